//! facecapture-docs: writes the packages' man pages and shell completions from the
//! programs' own command lines (their `cli.rs`, included here with `#[path]`, so a
//! flag added to a program is in its page and completions at the next package
//! build). A build tool run by scripts/package-docs.sh, not shipped.
//!
//!   facecapture-docs OUTDIR
//!
//! writes OUTDIR/man/facecaptured.8 and facecapturectl.1 (clap_mangen, with the
//! exit status, files, environment and see-also sections the programs' help has no
//! room for), a page for each subcommand (facecapturectl-enroll.1, ...), and
//! OUTDIR/completions/{bash,zsh,fish}/ for both (clap_complete).

#[path = "../../src/bin/facecaptured/cli.rs"]
#[allow(dead_code)]
mod daemon_cli;

#[path = "../../src/bin/facecaptured/ctl/cli.rs"]
#[allow(dead_code)]
mod ctl_cli;

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{Roff, bold, italic, roman};
use std::io::Write;
use std::path::Path;

/// A man page section of tagged paragraphs: (term, text).
fn section(roff: &mut Roff, title: &str, items: &[(&str, &str)]) {
    roff.control("SH", [title]);
    for (term, text) in items {
        roff.control("TP", []);
        roff.text([bold(*term)]);
        roff.text([roman(*text)]);
    }
}

fn see_also(roff: &mut Roff, pages: &[(&str, &str)]) {
    roff.control("SH", ["SEE ALSO"]);
    let mut inlines = Vec::new();
    for (i, (page, volume)) in pages.iter().enumerate() {
        if i > 0 {
            inlines.push(roman(", "));
        }
        inlines.push(bold(*page));
        inlines.push(roman(format!("({volume})")));
    }
    roff.text(inlines);
}

/// `cmd` as clap_mangen names its subcommands' pages (`facecapturectl-enroll`), with
/// no `help` subcommand (it has no page).
fn built(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn man(cmd: clap::Command, volume: &str) -> clap_mangen::Man {
    let version = env!("CARGO_PKG_VERSION");
    clap_mangen::Man::new(cmd)
        .section(volume)
        .manual("facecaptured")
        .source(format!("facecaptured {version}"))
}

/// The pages of `cmd`'s subcommands, and theirs: (file name, page).
fn subcommand_pages(cmd: &clap::Command, volume: &str) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut pages = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.extend(subcommand_pages(sub, volume)?);
        let man = man(sub.clone(), volume);
        let mut out = Vec::new();
        man.render(&mut out)?;
        pages.push((man.get_filename(), out));
    }
    Ok(pages)
}

/// The page of `cmd` in `volume`, its generated sections followed by `extra`.
fn page(cmd: clap::Command, volume: &str, extra: impl Fn(&mut Roff)) -> std::io::Result<Vec<u8>> {
    let man = man(built(cmd), volume);
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    let mut roff = Roff::new();
    extra(&mut roff);
    roff.to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

fn daemon_page() -> std::io::Result<Vec<u8>> {
    page(daemon_cli::Args::command(), "8", |roff| {
        section(
            roff,
            "EXIT STATUS",
            &[
                (
                    "0",
                    "stopped by SIGTERM, or the configuration is valid (--check-config).",
                ),
                (
                    "1",
                    "a failure the journal explains (the bus name, the runtime).",
                ),
                (
                    "78",
                    "EX_CONFIG: the configuration or the device identity cannot work; the \
                     journal's config: line names the key. systemd does not retry it.",
                ),
            ],
        );
        section(
            roff,
            "FILES",
            &[
                (
                    "/etc/facecaptured/config.toml",
                    "the configuration (a conffile).",
                ),
                (
                    "/etc/facecaptured/credentials/",
                    "the secrets, sealed by facecaptured provision as *.cred files.",
                ),
                (
                    "/var/lib/facecaptured/facecaptured.db",
                    "the enrollments and the device id (SQLite). No face data is ever stored.",
                ),
                (
                    "/usr/share/dbus-1/interfaces/org.facecapture.FaceCapture1.xml",
                    "the D-Bus interface, documented.",
                ),
            ],
        );
        section(
            roff,
            "ENVIRONMENT",
            &[
                (
                    "FACECAPTURED__<SECTION>__<KEY>",
                    "overrides a configuration key, e.g. FACECAPTURED__CAPTURE__TIMEOUT_S.",
                ),
                (
                    "CREDENTIALS_DIRECTORY",
                    "where systemd put the decrypted secrets.",
                ),
                (
                    "HTTPS_PROXY, NO_PROXY",
                    "the proxy, when server.proxy is empty.",
                ),
                ("RUST_LOG", "the log filter (default: info)."),
            ],
        );
        see_also(
            roff,
            &[
                ("facecapturectl", "1"),
                ("org.facecapture.FaceCapture1", "7"),
                ("systemd-creds", "1"),
                ("journalctl", "1"),
            ],
        );
    })
}

fn ctl_page() -> std::io::Result<Vec<u8>> {
    page(ctl_cli::Args::command(), "1", |roff| {
        section(
            roff,
            "EXIT STATUS",
            &[
                (
                    "0",
                    "the call succeeded (access granted, enrollment complete).",
                ),
                (
                    "1",
                    "the operation failed or was refused: access not granted, enrollment \
                     not complete, or a D-Bus error (the message names it and what to do).",
                ),
                ("2", "the command line is wrong."),
            ],
        );
        roff.control("SH", ["PERMISSIONS"]);
        roff.text([
            roman("The bus policy lets group "),
            italic("facecapture"),
            roman(" (door controllers) authenticate and cancel, group "),
            italic("facecapture-admin"),
            roman(
                " call everything (enroll, list, remove, stats, camera-check, doctor), and anyone \
                 read the status. Others get AccessDenied. camera-check --snapshot is for \
                 root only: the frame is a picture of a face, biometric data.",
            ),
        ]);
        section(
            roff,
            "FILES",
            &[(
                "/etc/facecaptured/config.toml",
                "read by the offline tools (detect, trigger-enroll, trigger-authenticate) \
                 and given with --config.",
            )],
        );
        see_also(
            roff,
            &[
                ("facecaptured", "8"),
                ("org.facecapture.FaceCapture1", "7"),
                ("journalctl", "1"),
            ],
        );
    })
}

fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::File::create(path)?.write_all(bytes)
}

fn completions(out: &Path, mut cmd: clap::Command, name: &str) -> std::io::Result<()> {
    for (shell, dir, file) in [
        (Shell::Bash, "bash", name.to_owned()),
        (Shell::Zsh, "zsh", format!("_{name}")),
        (Shell::Fish, "fish", format!("{name}.fish")),
    ] {
        let mut bytes = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut bytes);
        write(&out.join("completions").join(dir).join(file), &bytes)?;
    }
    Ok(())
}

fn run(out: &Path) -> std::io::Result<()> {
    write(&out.join("man/facecaptured.8"), &daemon_page()?)?;
    write(&out.join("man/facecapturectl.1"), &ctl_page()?)?;
    for (cmd, volume) in [
        (daemon_cli::Args::command(), "8"),
        (ctl_cli::Args::command(), "1"),
    ] {
        for (name, page) in subcommand_pages(&built(cmd), volume)? {
            write(&out.join("man").join(name), &page)?;
        }
    }
    completions(out, daemon_cli::Args::command(), "facecaptured")?;
    completions(out, ctl_cli::Args::command(), "facecapturectl")?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: facecapture-docs OUTDIR");
        return std::process::ExitCode::from(2);
    };
    match run(Path::new(&out)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facecapture-docs: {}: {e}", Path::new(&out).display());
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_hold_every_subcommand_and_the_extra_sections() {
        let ctl = String::from_utf8(ctl_page().expect("page")).expect("utf-8");
        for needle in [
            ".TH facecapturectl 1",
            "authenticate\\-qr",
            "stats",
            "EXIT STATUS",
            "facecapture\\-admin",
            "SEE ALSO",
        ] {
            assert!(ctl.contains(needle), "{needle} not in facecapturectl.1");
        }
        let daemon = String::from_utf8(daemon_page().expect("page")).expect("utf-8");
        for needle in [
            ".TH facecaptured 8",
            "provision",
            "\\-\\-check\\-config",
            "78",
        ] {
            assert!(daemon.contains(needle), "{needle} not in facecaptured.8");
        }
    }

    #[test]
    fn completions_complete_the_subcommands() {
        let dir = std::env::temp_dir().join(format!("facecapture-docs-{}", std::process::id()));
        run(&dir).expect("run");
        let bash =
            std::fs::read_to_string(dir.join("completions/bash/facecapturectl")).expect("bash");
        assert!(bash.contains("authenticate-qr") && bash.contains("remove"));
        let zsh =
            std::fs::read_to_string(dir.join("completions/zsh/_facecapturectl")).expect("zsh");
        assert!(zsh.starts_with("#compdef facecapturectl"));
        let fish =
            std::fs::read_to_string(dir.join("completions/fish/facecaptured.fish")).expect("fish");
        assert!(fish.contains("check-config"));
        // A page for each subcommand the main page lists.
        for page in [
            "facecaptured-provision.8",
            "facecapturectl-enroll.1",
            "facecapturectl-qr-decode.1",
            "facecapturectl-stats.1",
        ] {
            assert!(dir.join("man").join(page).is_file(), "no {page}");
        }
        assert!(!dir.join("man/facecapturectl-help.1").exists());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
