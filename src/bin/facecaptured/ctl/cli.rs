//! facecapturectl's command line, in a file of its own: the program parses it, and
//! facecapture-docs (the man page and shell completions of the packages) includes
//! it with `#[path]`. Only clap and std here.

use std::path::PathBuf;

#[derive(clap::Parser, Debug)]
#[command(
    name = "facecapturectl",
    version,
    about = "Operate facecaptured and its AwareID tenant"
)]
pub struct Args {
    /// Configuration file (default: /etc/facecaptured/config.toml if present).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Talk to the daemon on the session bus (development, tests) instead of the system bus.
    #[arg(long, global = true)]
    pub session: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    #[command(flatten)]
    Daemon(Call),
    /// Find faces in images; prints one JSON line per image.
    Detect {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Smallest face to report, in pixels (default: capture.min_face_px).
        #[arg(long)]
        min_face_px: Option<u32>,
    },
    /// Check what usually breaks in the field and say what to do: the
    /// configuration, the clock (NTP), the daemon on the bus, and from the daemon's
    /// seat the credentials, the camera, AwareID (a token call) and the free disk
    /// space. Exit status 0 only when every check passes.
    Doctor,
    /// QR code tools.
    Qr {
        #[command(subcommand)]
        command: QrCommand,
    },
    /// A site of terminals (docs/identity.md): offline tools.
    Site {
        #[command(subcommand)]
        command: SiteCommand,
    },
    /// Start a QR enrollment as the web portal does; prints the QR code.
    TriggerEnroll {
        username: String,
        email: String,
        /// Also save the QR image (PNG) here.
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
    /// Start a QR authentication as the web portal does; prints the QR code.
    TriggerAuthenticate {
        username: String,
        #[arg(long, value_name = "FILE")]
        png: Option<PathBuf>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum QrCommand {
    /// Verify and decode a sessionCallbackURL, or the QR code in a PNG/JPEG image.
    Decode {
        #[arg(value_name = "URL|IMAGE")]
        input: String,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum SiteCommand {
    /// Make a new site identity (device id, P-256 key, enrollment key) into a
    /// new 0600 file, for `facecaptured provision --site-identity` on every
    /// terminal of the site. Refuses a file that exists. Prints the device id.
    NewIdentity {
        /// The file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Make the site's bucket on the hub (once, as the hub's admin): the
    /// configuration's [site] hub, bucket and ca_file, and hub_credentials
    /// holding the admin's credential. Succeeds if it exists.
    CreateBucket {
        /// 1 for one hub, 3 for a 3-node cluster.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
        replicas: u8,
    },
}

/// The commands that talk to the daemon (docs/cli.md); flattened into the CLI's own.
#[derive(clap::Subcommand, Debug)]
pub enum Call {
    /// Enroll a person: capture their face and register this terminal for them.
    Enroll {
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        phone: String,
        #[arg(long, default_value = "")]
        first: String,
        #[arg(long, default_value = "")]
        last: String,
    },
    /// Enroll from a QR code: the sessionCallbackURL, or none to scan it with the camera.
    EnrollQr { url: Option<String> },
    /// Authenticate an enrolled person; exit status 1 when access is not granted.
    Authenticate { username: String },
    /// Authenticate from a QR code (URL, or none to scan with the camera).
    AuthenticateQr { url: Option<String> },
    /// List the enrollments on this terminal (no registration codes).
    List,
    /// Remove an enrollment from this terminal.
    Remove { username: String },
    /// The daemon's state, device id, camera and version.
    Status,
    /// The daemon's metrics since it started: operations by kind and outcome,
    /// capture and AwareID call times, camera errors, bad frames, feedback codes
    /// (one JSON object, by Prometheus series name).
    Stats,
    /// Cancel the operation in flight.
    Cancel,
    /// For installers: watch the camera for a while without contacting AwareID
    /// and report what it sees: format, size and frame rate, bad and dropped
    /// frames, where faces sit and how large, light and sharpness, with advice
    /// ("faces sit high in the frame: tilt the camera up"). The feedback codes
    /// show live on stderr while it runs; the report is one JSON line.
    CameraCheck {
        /// How long to watch, 1 to 30 seconds.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=30))]
        seconds: u32,
        /// Root only: also save one frame (at most 320 pixels wide, PNG, mode 0600)
        /// with the face box (amber) and the area the face centre must fall in
        /// (green) drawn on it, for aiming. It is a picture of a person's face:
        /// biometric data. Delete it when the camera is aimed.
        #[arg(long, value_name = "FILE")]
        snapshot: Option<PathBuf>,
    },
}
