//! facecaptured's command line, in a file of its own: the daemon parses it, and
//! facecapture-docs (the man page and shell completions of the packages) includes
//! it with `#[path]`. Only clap and std here.

use std::path::PathBuf;

#[derive(clap::Parser, Debug)]
#[command(
    name = "facecaptured",
    version,
    about = "Face capture daemon for door terminals (D-Bus, V4L2, AwareID)",
    long_about = "Face capture daemon for door terminals (D-Bus, V4L2, AwareID).\n\n\
        A systemd service (facecaptured.service) that owns the terminal's camera and \
        answers door controllers on the system bus as org.facecapture.FaceCapture1: it \
        finds a compliant face in the live stream, packages it as the AwareID Face SDK \
        does, runs the AwareID enrollment or authentication workflow and replies. Every \
        access decision is a journal record with a MESSAGE_ID (journalctl -x explains \
        it). systemctl reload (SIGHUP) reads the configuration again for the next \
        operation."
)]
pub struct Args {
    /// Configuration file (default: /etc/facecaptured/config.toml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration and exit (for ExecStartPre= and operators).
    #[arg(long)]
    pub check_config: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Seal the device key and the tenant's secrets with systemd-creds (run as
    /// root, once after installing and again after changing a secret).
    ///
    /// Makes the device key, or moves a database's plain key into the sealed
    /// credential and scrubs the row; seals client_secret, apikey and aes_key
    /// found as plain files in the credentials directory or given with --secret,
    /// and removes the plain files; restarts a running service.
    Provision {
        /// What to seal with: tpm2 (with systemd's host key), host (host key
        /// only), or auto (tpm2 when the board has a usable TPM2).
        #[arg(long, value_name = "KEY", default_value = "auto", value_parser = ["auto", "tpm2", "host"])]
        with_key: String,
        /// A secret to seal: client_secret, apikey, aes_key, proxy_credentials or
        /// hub_credentials, from FILE (`-` reads stdin, so the value never
        /// touches the disk). Repeatable.
        #[arg(long, value_name = "NAME=FILE")]
        secret: Vec<String>,
        /// Seal this site identity (the file `facecapturectl site new-identity`
        /// made, or `-` for stdin) so that the terminal signs as the site; the
        /// file is overwritten and removed once sealed.
        #[arg(long, value_name = "FILE|-")]
        site_identity: Option<PathBuf>,
        /// Make a new device key even if one exists (a replacement board or a
        /// cleared TPM); every person must then be enrolled again.
        #[arg(long)]
        new_key: bool,
        /// TPM2 PCRs to bind the seal to (systemd-creds --tpm2-pcrs=, e.g.
        /// 0+7); by default systemd's, PCR 7 (the Secure Boot state).
        #[arg(long, value_name = "PCRS", default_value = "")]
        tpm2_pcrs: String,
        /// Where the credentials are.
        #[arg(
            long,
            value_name = "DIR",
            default_value = "/etc/facecaptured/credentials"
        )]
        credentials_dir: PathBuf,
        /// The daemon's state directory (its database).
        #[arg(long, value_name = "DIR", default_value = "/var/lib/facecaptured")]
        state_dir: PathBuf,
        /// Do not restart a running facecaptured.service afterwards.
        #[arg(long)]
        no_restart: bool,
    },
}
