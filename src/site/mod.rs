//! The door's link to its site (docs/identity.md, README "A site with many
//! doors"): the enrollments of every door, replicated through a NATS JetStream
//! key-value bucket on the site's hub, each door's SQLite database its own copy.
//!
//! [`Hub`] is what the engine and the D-Bus service see: the site identity, this
//! door's name, the link's state, and a bell that wakes the link when an
//! enrollment or a removal was queued. [`run`] is the link itself, a tokio task:
//! it connects, watches the bucket from the revision after the last one applied
//! (kept in SQLite with the rows it applied), applies each entry by the site's
//! rule ([`crate::storage::SiteEntry`]), and publishes the outbox. Whatever goes
//! wrong (the hub down, a partition, a hub restart whose watch would not resume,
//! a watch that stalled with its hub node: [`Stall`]) ends the session; the next one starts from the last revision applied. The
//! door never waits for the hub: Authenticate reads the local copy only.

pub mod entry;

use crate::config::SiteConfig;
use crate::crypto::site::SiteIdentity;
use crate::storage::{Applied, Storage, StorageError};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;

/// The link's state, as D-Bus, status, stats, the metrics and doctor show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteState {
    /// Whether the link to the hub is up now.
    pub connected: bool,
    /// When the hub was last heard from (Unix seconds; 0: never).
    pub last_contact: i64,
    /// The last revision of the bucket applied here.
    pub applied: u64,
    /// This door's entries waiting for the hub.
    pub outbox: u64,
}

/// The site as the daemon holds it.
pub struct Hub {
    /// The site identity (its key seals the entries and names the users).
    pub identity: SiteIdentity,
    /// This door's name in the site.
    pub door: String,
    /// `site.max_stale_s`.
    pub max_stale_s: u64,
    /// The state, and who is told of each change (the D-Bus `Site` property).
    state: tokio::sync::watch::Sender<SiteState>,
    bell: tokio::sync::Notify,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("door", &self.door)
            .finish_non_exhaustive()
    }
}

/// What the link needs of the daemon: its database.
pub trait Local: Send + Sync + 'static {
    /// Runs `f` on the database (a blocking call: the link runs it on a
    /// blocking thread).
    fn with_storage(
        &self,
        f: &mut dyn FnMut(&mut Storage) -> Result<(), StorageError>,
    ) -> Result<(), StorageError>;

    /// The site's state changed (at most once a second): the metrics file is
    /// written again (a blocking call).
    fn site_changed(&self);
}

/// Why a session with the hub ended.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The hub could not be reached or refused the door.
    #[error("cannot connect to the hub: {0}")]
    Connect(String),
    /// The bucket is not there (or the door may not read it).
    #[error("bucket {bucket:?}: {message}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// What the hub said.
        message: String,
    },
    /// The watch failed.
    #[error("watching the bucket: {0}")]
    Watch(String),
    /// The hub refused an entry of this door's (its permissions).
    #[error("publishing {key}: {message}")]
    Publish {
        /// The entry's key.
        key: String,
        /// What the hub said.
        message: String,
    },
    /// The local database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The connection dropped and came back: a new watch, from the last
    /// revision applied.
    #[error("the connection to the hub was lost")]
    Lost,
    /// The hub holds revisions past the last one applied, and the watch has
    /// delivered none of them for [`WATCH_STALLED_AFTER`] while the
    /// connection stayed up (its consumer lost with a hub node): a new watch,
    /// from the last revision applied.
    #[error(
        "the watch stalled: the hub is at revision {hub_last}, this door at {applied} for {stalled_s} s"
    )]
    Stalled {
        /// The last revision applied here.
        applied: u64,
        /// The hub's last revision.
        hub_last: u64,
        /// How long the watch delivered nothing.
        stalled_s: u64,
    },
}

impl Hub {
    /// The hub of `config` for `identity`; `door` resolved (the host name when
    /// `site.door` is empty).
    pub fn new(config: &SiteConfig, identity: SiteIdentity) -> Result<Self, String> {
        let door = if config.door.is_empty() {
            host_name()?
        } else {
            config.door.clone()
        };
        if !crate::config::is_site_name(&door) {
            return Err(format!(
                "site.door is empty and the host name {door:?} cannot be a door's name \
                 (letters, digits, '-', '_'): set site.door"
            ));
        }
        Ok(Self {
            identity,
            door,
            max_stale_s: config.max_stale_s,
            state: tokio::sync::watch::Sender::new(SiteState::default()),
            bell: tokio::sync::Notify::new(),
        })
    }

    /// The link's state now.
    pub fn state(&self) -> SiteState {
        self.state.borrow().clone()
    }

    /// A receiver told of every change of the state (the daemon emits the
    /// `Site` property's PropertiesChanged from it).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<SiteState> {
        self.state.subscribe()
    }

    /// Wakes the link: an entry was queued, and `outbox` wait now.
    pub fn ring(&self, outbox: u64) {
        self.update(|s| s.outbox = outbox);
        self.bell.notify_one();
    }

    /// How many seconds past `site.max_stale_s` this door is, cut off from the
    /// hub, at `now`; `None` while it may still decide alone.
    pub fn stale_by(&self, now: i64) -> Option<u64> {
        if self.max_stale_s == 0 {
            return None;
        }
        let s = self.state.borrow();
        if s.connected {
            return None;
        }
        let since = u64::try_from(now.saturating_sub(s.last_contact)).unwrap_or(0);
        since
            .checked_sub(self.max_stale_s)
            .filter(|_| since > self.max_stale_s)
    }

    fn update(&self, f: impl FnOnce(&mut SiteState)) {
        self.state.send_if_modified(|state| {
            let before = state.clone();
            f(state);
            if let Some(m) = crate::metrics::global() {
                m.site(state);
            }
            *state != before
        });
    }
}

fn host_name() -> Result<String, String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .map_err(|e| format!("site.door is empty and the host name cannot be read: {e}"))
}

/// Runs `f` on the database on a blocking thread.
async fn on_db<L: Local, T: Send + 'static>(
    local: &Arc<L>,
    mut f: impl FnMut(&mut Storage) -> Result<T, StorageError> + Send + 'static,
) -> Result<T, LinkError> {
    let local = local.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = None;
        local.with_storage(&mut |s| {
            out = Some(f(s)?);
            Ok(())
        })?;
        Ok(out)
    })
    .await
    .map_err(|e| LinkError::Watch(e.to_string()))?
    .and_then(|o: Option<T>| o.ok_or(LinkError::Lost))
}

/// Makes the site's bucket on the hub (the operator's step, with the hub's
/// admin credential in `config.hub_credentials`): JetStream's key-value layout
/// (stream `KV_<bucket>`, subjects `$KV.<bucket>.>`, the last value per key,
/// rollups allowed, deletes denied), made as a stream because Debian 12's
/// nats-server 2.9 refuses the settings newer clients send for a bucket.
/// `replicas`: 1, or 3 on a 3-node cluster. Succeeds when it exists alike.
///
/// A cluster that has just started may not have elected its metadata leader or
/// met its peers yet: the hub then answers "temporarily unavailable", "no
/// peers" or "insufficient resources", or not at all. Those answers are tried
/// again (the request is idempotent) for up to [`CREATE_BUCKET_WITHIN`], with
/// a pause that doubles from 250 ms to 4 s; any other answer is final.
pub async fn create_bucket(config: &SiteConfig, replicas: usize) -> Result<(), LinkError> {
    use async_nats::jetstream::context::CreateStreamErrorKind as Kind;
    use async_nats::jetstream::{ErrorCode, stream};
    let client = connect(config, None).await?;
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(Duration::from_secs(10));
    let bucket = &config.bucket;
    let stream_config = stream::Config {
        name: format!("KV_{bucket}"),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_message_size: i32::try_from(entry::MAX_VALUE).unwrap_or(i32::MAX),
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        num_replicas: replicas,
        storage: stream::StorageType::File,
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + CREATE_BUCKET_WITHIN;
    let mut pause = Duration::from_millis(250);
    loop {
        let error = match js.get_or_create_stream(stream_config.clone()).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let settling = match error.kind() {
            Kind::TimedOut | Kind::JetStreamUnavailable => true,
            Kind::JetStream(e) => [
                ErrorCode::CLUSTER_NOT_AVAILABLE,
                ErrorCode::CLUSTER_NO_PEERS,
                ErrorCode::INSUFFICIENT_RESOURCES,
            ]
            .contains(&e.error_code()),
            _ => false,
        };
        if !settling || tokio::time::Instant::now() + pause > deadline {
            return Err(LinkError::Bucket {
                bucket: bucket.clone(),
                message: error.to_string(),
            });
        }
        tracing::info!(
            bucket = bucket.as_str(),
            error = %error,
            retry_ms = pause.as_millis() as u64,
            "site hub: not ready for the bucket yet (a cluster still electing its leader?); trying again"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(4));
    }
}

/// How long [`create_bucket`] keeps trying while the hub settles.
pub const CREATE_BUCKET_WITHIN: Duration = Duration::from_secs(60);

/// How often the link asks the hub for an answer while nothing else arrives.
const ROUND_TRIP_EVERY: Duration = Duration::from_secs(3);

/// How long it waits for that answer.
const ROUND_TRIP_WITHIN: Duration = Duration::from_secs(3);

/// How many round trips in a row may go unanswered before the link is called
/// lost (a cut cable: within about 15 s).
const ROUND_TRIPS_UNANSWERED: u32 = 3;

/// How long a JetStream request of the session may take (the bucket, the
/// watch): a hub electing a new leader answers none, and the next session
/// asks again.
const REQUEST_WITHIN: Duration = Duration::from_secs(4);

/// How long the watch may deliver nothing while the hub holds revisions past
/// the last one applied before the session starts a new watch.
/// (An entry reaches every watching door in milliseconds; the client
/// library's own heartbeat check takes 10 s.)
pub const WATCH_STALLED_AFTER: Duration = Duration::from_secs(4);

/// Notices a watch that stopped delivering while the connection stays up.
///
/// A watch is an ephemeral consumer on one hub node. When that node dies, the
/// client library recreates it only if the connection drops or its idle
/// heartbeats stop; a door connected to a surviving node may see neither and
/// wait for ever. The session's round trip reads the hub's last revision:
/// behind it, with nothing applied for [`WATCH_STALLED_AFTER`], is a stall.
/// While behind, the session asks every second rather than every few.
///
/// ```
/// use facecapture::site::Stall;
/// use std::time::{Duration, Instant};
/// let t = Instant::now();
/// let mut stall = Stall::default();
/// assert_eq!(stall.check(4, 5, t), None); // behind: the clock starts
/// assert!(stall.behind());
/// assert_eq!(stall.check(5, 6, t + Duration::from_secs(3)), None); // it moved
/// assert_eq!(stall.check(5, 6, t + Duration::from_secs(5)), None);
/// assert_eq!(stall.check(5, 6, t + Duration::from_secs(7)), Some(Duration::from_secs(4)));
/// assert_eq!(stall.check(6, 6, t + Duration::from_secs(30)), None); // caught up
/// assert!(!stall.behind());
/// assert_eq!(stall.check(6, 7, t + Duration::from_secs(33)), None); // behind anew
/// ```
#[derive(Debug, Default)]
pub struct Stall {
    /// Since when, and at which applied revision, the door has been behind.
    behind: Option<(std::time::Instant, u64)>,
}

impl Stall {
    /// Whether the door was behind the hub when last checked.
    pub fn behind(&self) -> bool {
        self.behind.is_some()
    }

    /// `applied` here and `hub_last` on the hub at `now`: how long the watch
    /// has delivered nothing while behind, once that reaches
    /// [`WATCH_STALLED_AFTER`].
    pub fn check(
        &mut self,
        applied: u64,
        hub_last: u64,
        now: std::time::Instant,
    ) -> Option<Duration> {
        if applied >= hub_last {
            self.behind = None;
            return None;
        }
        match self.behind {
            Some((since, at)) if at == applied => {
                let stalled = now.saturating_duration_since(since);
                (stalled >= WATCH_STALLED_AFTER).then_some(stalled)
            }
            _ => {
                self.behind = Some((now, applied));
                None
            }
        }
    }
}

/// The link: sessions with the hub, one after another, for ever; between two
/// a pause that doubles up to 15 s (a hub back is found within that).
pub async fn run<L: Local>(hub: Arc<Hub>, config: SiteConfig, local: Arc<L>) {
    let mut pause = Duration::from_millis(500);
    if let Ok((applied, outbox, contact)) = on_db(&local, |s| {
        Ok((s.site_applied()?, s.outbox_len()?, s.site_contact()?))
    })
    .await
    {
        hub.update(|st| {
            st.applied = applied;
            st.outbox = outbox;
            st.last_contact = contact;
        });
    }
    loop {
        let result = session(&hub, &config, &local, &mut pause).await;
        hub.update(|s| s.connected = false);
        let l = local.clone();
        let _ = tokio::task::spawn_blocking(move || l.site_changed()).await;
        let error = result.err().map(|e| e.to_string()).unwrap_or_default();
        tracing::warn!(
            door = hub.door.as_str(),
            error = error.as_str(),
            retry_ms = pause.as_millis() as u64,
            "site hub: link down; this door decides from its own copy meanwhile"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(15));
    }
}

/// How long one hub node may take to answer a connection.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// At most this many of `site.hub`'s nodes are tried in one connect.
const CONNECT_NODES: usize = 5;

/// The subjects a door's replies come back on: `_INBOX_<door>.` rather than
/// NATS's shared `_INBOX.`, so that the hub can let each door subscribe to its
/// own replies only (examples/site/hub.conf); a stolen door's credential then
/// cannot listen to what the hub answers the other doors.
///
/// ```
/// assert_eq!(facecapture::site::inbox_prefix("t1"), "_INBOX_t1");
/// ```
pub fn inbox_prefix(door: &str) -> String {
    format!("_INBOX_{door}")
}

/// A connection to one of the hub's nodes, with replies on `inbox` (NATS's
/// default for `None`: the operator's admin credential). Each node listed is
/// tried once (in a random order): a node that is down, or one whose kill the
/// others are still electing around, costs one refused attempt, not the
/// session.
async fn connect(
    config: &SiteConfig,
    inbox: Option<String>,
) -> Result<async_nats::Client, LinkError> {
    let nodes = config.hub.len().clamp(1, CONNECT_NODES);
    let mut options = async_nats::ConnectOptions::new()
        .name("facecaptured")
        .connection_timeout(CONNECT_WITHIN)
        .ping_interval(Duration::from_secs(5))
        .max_reconnects(Some(nodes));
    if let Some(inbox) = inbox {
        options = options.custom_inbox_prefix(inbox);
    }
    let creds = config.hub_credentials.expose();
    if let Some(seed) = creds.strip_prefix("SU").map(|_| creds) {
        options = options.nkey(seed.to_owned());
    } else if let Some((user, password)) = creds.split_once(':') {
        options = options.user_and_password(user.to_owned(), password.to_owned());
    }
    if !config.ca_file.as_os_str().is_empty() {
        options = options.add_root_certificates(config.ca_file.clone());
    }
    if config.hub.iter().any(|u| u.starts_with("tls://")) {
        options = options.require_tls(true);
    }
    let addrs: Vec<async_nats::ServerAddr> = config
        .hub
        .iter()
        .map(|u| {
            u.parse()
                .map_err(|e| LinkError::Connect(format!("{u}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    // Each node's time, and 1 s for the client's pauses between them.
    let within = CONNECT_WITHIN * nodes as u32 + Duration::from_secs(1);
    tokio::time::timeout(within, options.connect(addrs))
        .await
        .map_err(|_| LinkError::Connect(format!("no answer within {} s", within.as_secs())))?
        .map_err(|e| LinkError::Connect(e.to_string()))
}

async fn session<L: Local>(
    hub: &Arc<Hub>,
    config: &SiteConfig,
    local: &Arc<L>,
    pause: &mut Duration,
) -> Result<(), LinkError> {
    let client = connect(config, Some(inbox_prefix(&hub.door))).await?;
    let mut js = async_nats::jetstream::new(client.clone());
    js.set_timeout(REQUEST_WITHIN);
    let bucket_err = |e: &dyn std::fmt::Display| LinkError::Bucket {
        bucket: config.bucket.clone(),
        message: e.to_string(),
    };
    let kv = js
        .get_key_value(config.bucket.as_str())
        .await
        .map_err(|e| bucket_err(&e))?;
    // The bucket's stream, for its state: a request answered by the stream's
    // leader each time (`kv.status()` only shows what `get_key_value` read).
    let stream = js
        .get_stream_no_info(format!("KV_{}", config.bucket))
        .await
        .map_err(|e| bucket_err(&e))?;
    let applied = on_db(local, |s| s.site_applied()).await?;
    let last = kv
        .status()
        .await
        .map_err(|e| bucket_err(&e))?
        .info
        .state
        .last_sequence;
    // A bucket younger than this door's copy (the hub's store was lost and the
    // bucket made again): its revisions start over, so the watch does too.
    let from = if last < applied {
        tracing::warn!(
            door = hub.door.as_str(),
            applied,
            hub_last = last,
            "site hub: the bucket is behind this door's copy (made again?): reading it from \
             the start; the enrollments held here stay"
        );
        on_db(local, |s| s.reset_site()).await?;
        1
    } else {
        applied + 1
    };
    // The outbox first: a hub still placing consumers after losing a node
    // may take a watch long before it takes entries again, and the other
    // doors are waiting for these.
    publish(hub, &kv, local).await?;
    let mut watch = match kv.watch_all_from_revision(from).await {
        Ok(w) => w,
        Err(e) => {
            // A hub that cannot place the watch's consumer yet (it lost a
            // node) still answers reads: what this door lacks is read one
            // by one before the next session tries again.
            let now_last = tokio::time::timeout(ROUND_TRIP_WITHIN, stream.get_info())
                .await
                .ok()
                .and_then(Result::ok)
                .map_or(last, |info| info.state.last_sequence);
            read_through(hub, local, &stream, &config.bucket, from, now_last).await?;
            return Err(LinkError::Watch(e.to_string()));
        }
    };
    contact(hub, local, true).await?;
    *pause = Duration::from_millis(500);
    tracing::info!(
        door = hub.door.as_str(),
        bucket = config.bucket.as_str(),
        from_revision = from,
        "site hub: connected; watching the site's enrollments"
    );
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut shown = SiteState::default();
    let mut asked = tokio::time::Instant::now();
    let mut stall = Stall::default();
    let mut unanswered = 0u32;
    loop {
        tokio::select! {
            entry = watch.next() => match entry {
                None => return Err(LinkError::Watch("the watch ended".into())),
                Some(Err(e)) => return Err(LinkError::Watch(e.to_string())),
                Some(Ok(e)) => {
                    // What else the watch has ready goes in the same transaction.
                    let mut batch = vec![e];
                    let mut failed = None;
                    while batch.len() < MAX_BATCH {
                        match futures_util::FutureExt::now_or_never(watch.next()) {
                            Some(Some(Ok(e))) => batch.push(e),
                            Some(Some(Err(e))) => {
                                failed = Some(LinkError::Watch(e.to_string()));
                                break;
                            }
                            Some(None) | None => break,
                        }
                    }
                    apply(hub, local, batch).await?;
                    if let Some(e) = failed {
                        return Err(e);
                    }
                }
            },
            () = hub.bell.notified() => publish(hub, &kv, local).await?,
            _ = tick.tick() => {
                if client.connection_state() != async_nats::connection::State::Connected {
                    return Err(LinkError::Lost);
                }
                // Contact means an answer from the hub, not a socket that looks
                // open: a round trip every few seconds (a cut cable shows here
                // long before TCP notices): the stream's state, from its leader.
                // One unanswered is a hub electing a new leader (the watch may
                // well go on meanwhile): asked again each second, and only
                // ROUND_TRIPS_UNANSWERED in a row end the session.
                if asked.elapsed() >= ROUND_TRIP_EVERY || stall.behind() || unanswered > 0 {
                    let answer = tokio::time::timeout(ROUND_TRIP_WITHIN, stream.get_info()).await;
                    asked = tokio::time::Instant::now();
                    let hub_last = match answer {
                        Ok(Ok(info)) => info.state.last_sequence,
                        Ok(Err(e)) if unanswered + 1 >= ROUND_TRIPS_UNANSWERED => {
                            return Err(LinkError::Watch(e.to_string()));
                        }
                        Err(_) if unanswered + 1 >= ROUND_TRIPS_UNANSWERED => {
                            return Err(LinkError::Lost);
                        }
                        Ok(Err(_)) | Err(_) => {
                            unanswered += 1;
                            continue;
                        }
                    };
                    unanswered = 0;
                    contact(hub, local, false).await?;
                    let applied = hub.state().applied;
                    if let Some(stalled) = stall.check(applied, hub_last, std::time::Instant::now()) {
                        read_through(hub, local, &stream, &config.bucket, applied + 1, hub_last)
                            .await?;
                        return Err(LinkError::Stalled {
                            applied,
                            hub_last,
                            stalled_s: stalled.as_secs(),
                        });
                    }
                }
                publish(hub, &kv, local).await?;
                let now = hub.state();
                if (now.connected, now.applied, now.outbox) != (shown.connected, shown.applied, shown.outbox) {
                    let l = local.clone();
                    let _ = tokio::task::spawn_blocking(move || l.site_changed()).await;
                    shown = now;
                }
            }
        }
    }
}

/// The hub was heard from now: the state says so, and the database at most
/// every 10 s (or when `force`), so that a restart while cut off does not
/// grant a fresh `max_stale_s`.
async fn contact<L: Local>(hub: &Hub, local: &Arc<L>, force: bool) -> Result<(), LinkError> {
    let now = crate::clock::unix_now();
    let last = hub.state().last_contact;
    hub.update(|s| {
        s.connected = true;
        s.last_contact = now;
    });
    if force || now - last >= 10 {
        on_db(local, move |s| s.set_site_contact(now)).await?;
    }
    Ok(())
}

/// The most entries applied in one transaction.
const MAX_BATCH: usize = 512;

/// The most revisions [`read_through`] reads in one go (a door far behind
/// catches up through the next watch).
const READ_THROUGH_MAX: u64 = 1000;

/// Reads revisions `from..=to` of the bucket one by one from its stream's
/// leader and applies them: what a stalled watch did not deliver, or what a
/// hub that cannot place a watch yet holds. A revision the stream no longer
/// has was superseded by a later one of its key, which is read too.
async fn read_through<L: Local>(
    hub: &Arc<Hub>,
    local: &Arc<L>,
    stream: &async_nats::jetstream::stream::Stream<()>,
    bucket: &str,
    from: u64,
    to: u64,
) -> Result<(), LinkError> {
    use async_nats::jetstream::kv::{Entry, Operation};
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let to = to.min(from.saturating_add(READ_THROUGH_MAX - 1));
    if to < from {
        return Ok(());
    }
    let prefix = format!("$KV.{bucket}.");
    let mut batch = Vec::new();
    for revision in from..=to {
        let read = tokio::time::timeout(ROUND_TRIP_WITHIN, stream.get_raw_message(revision))
            .await
            .map_err(|_| LinkError::Lost)?;
        let m = match read {
            Ok(m) => m,
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => continue,
            Err(e) => {
                return Err(LinkError::Watch(format!(
                    "reading revision {revision}: {e}"
                )));
            }
        };
        let operation = match m.headers.get("KV-Operation") {
            None => Operation::Put,
            Some(op) => op.as_str().parse().unwrap_or(Operation::Delete),
        };
        let Some(key) = m.subject.as_str().strip_prefix(prefix.as_str()) else {
            continue;
        };
        batch.push(Entry {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: m.payload,
            revision: m.sequence,
            delta: 0,
            created: m.time,
            operation,
            seen_current: false,
        });
        if batch.len() == MAX_BATCH {
            apply(hub, local, std::mem::take(&mut batch)).await?;
        }
    }
    tracing::info!(
        door = hub.door.as_str(),
        from_revision = from,
        to_revision = to,
        "site hub: revisions read one by one past a watch that delivered none"
    );
    if !batch.is_empty() {
        apply(hub, local, batch).await?;
    }
    Ok(())
}

/// Applies `batch` (entries the watch had ready together) in one transaction,
/// and logs each.
async fn apply<L: Local>(
    hub: &Arc<Hub>,
    local: &Arc<L>,
    batch: Vec<async_nats::jetstream::kv::Entry>,
) -> Result<(), LinkError> {
    let mut entries = Vec::with_capacity(batch.len());
    let mut skipped = Vec::new();
    for e in batch {
        let revision = e.revision;
        if e.operation != async_nats::jetstream::kv::Operation::Put {
            tracing::warn!(
                revision,
                key = e.key.as_str(),
                "site hub: an entry was deleted or purged on the hub (not by a door): ignored"
            );
            skipped.push(revision);
            continue;
        }
        match entry::open(&hub.identity, &e.key, &e.value, revision) {
            Ok(entry) => entries.push(entry),
            Err(error) => {
                tracing::warn!(revision, error = %error, "site hub: an entry is refused");
                skipped.push(revision);
            }
        }
    }
    let door = hub.door.clone();
    let (entries, done, last) = on_db(local, move |s| {
        let done = s.apply_site_batch(&entries, &skipped, &door)?;
        let last = entries
            .iter()
            .map(|e| e.revision)
            .chain(skipped.iter().copied())
            .max()
            .unwrap_or(0);
        Ok((std::mem::take(&mut entries), done, last))
    })
    .await?;
    for (entry, applied) in entries.iter().zip(done) {
        tracing::info!(
            revision = entry.revision,
            door = entry.door.as_str(),
            username = entry.username(),
            outcome = applied.as_str(),
            "site entry applied"
        );
    }
    let now = crate::clock::unix_now();
    hub.update(|s| {
        s.applied = s.applied.max(last);
        s.last_contact = now;
    });
    Ok(())
}

async fn publish<L: Local>(
    hub: &Arc<Hub>,
    kv: &async_nats::jetstream::kv::Store,
    local: &Arc<L>,
) -> Result<(), LinkError> {
    loop {
        let Some((seq, queued)) = on_db(local, |s| s.outbox_first()).await? else {
            hub.update(|s| s.outbox = 0);
            return Ok(());
        };
        let revision = kv
            .put(queued.key.as_str(), queued.value.clone().into())
            .await
            .map_err(|e| LinkError::Publish {
                key: queued.key.clone(),
                message: e.to_string(),
            })?;
        let door = hub.door.clone();
        let left = on_db(local, move |s| {
            s.outbox_sent(seq, &door, revision)?;
            s.outbox_len()
        })
        .await?;
        hub.update(|s| s.outbox = left);
        tracing::info!(
            revision,
            door = hub.door.as_str(),
            outbox = left,
            "site entry published"
        );
    }
}

impl Applied {
    /// The outcome's name in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Removed => "removed",
            Self::Superseded => "superseded",
            Self::Pending => "pending",
            Self::Seen => "seen",
            Self::Reasserted => "reasserted",
        }
    }
}
