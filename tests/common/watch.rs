//! A D-Bus listener for tests: records the daemon's State changes, Progress and
//! CaptureFeedback signals as they arrive, so a test waits for the daemon to reach
//! a state (as fprintd's tests do) instead of sleeping.

use facecapture_dbus::FaceCapture1Proxy;
use futures_util::StreamExt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a wait may take before the test fails: a bound for a hung daemon,
/// not a synchronisation (nothing waits for it to pass).
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Seen {
    events: Vec<String>,
    /// How many buses' listeners have subscribed.
    listening: usize,
}

/// Events as strings: `state:capturing`, `progress:enroll:token`, `feedback:no-face`,
/// `owner:-` (the daemon's bus name released) or `owner::1.7` (taken), and
/// `property:Site` (any other property by its name). One watch may listen on
/// several daemons' buses at once; their events are then interleaved.
pub struct Watch {
    seen: Arc<(Mutex<Seen>, Condvar)>,
}

fn push(seen: &(Mutex<Seen>, Condvar), f: impl FnOnce(&mut Seen)) {
    let mut s = seen.0.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut s);
    seen.1.notify_all();
}

async fn listen(address: String, seen: Arc<(Mutex<Seen>, Condvar)>) -> zbus::Result<()> {
    let conn = zbus::connection::Builder::address(address.as_str())
        .build()
        .await?;
    let proxy = FaceCapture1Proxy::builder(&conn)
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await?;
    let mut progress = proxy.receive_progress().await?;
    let mut feedback = proxy.receive_capture_feedback().await?;
    let props = zbus::fdo::PropertiesProxy::builder(&conn)
        .destination(facecapture::daemon::BUS_NAME)
        .path(facecapture::daemon::OBJECT_PATH)
        .build()
        .await?;
    let mut changed = props.receive_properties_changed().await?;
    let bus = zbus::fdo::DBusProxy::new(&conn).await?;
    let mut owner = bus
        .receive_name_owner_changed_with_args(&[(0, facecapture::daemon::BUS_NAME)])
        .await?;
    push(&seen, |s| s.listening += 1);
    loop {
        let event = tokio::select! {
            Some(p) = progress.next() => p.args().map(|a| format!("progress:{}:{}", a.operation, a.step)),
            Some(f) = feedback.next() => f.args().map(|a| format!("feedback:{}", a.code)),
            Some(o) = owner.next() => o.args().map(|a| {
                format!("owner:{}", a.new_owner().as_ref().map_or("-".to_owned(), |n| n.to_string()))
            }),
            Some(c) = changed.next() => c.args().map(|a| {
                a.changed_properties
                    .iter()
                    .map(|(k, v)| match &**k {
                        "State" => format!("state:{}", <&str>::try_from(v).unwrap_or_default()),
                        other => format!("property:{other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            }),
            else => return Ok(()),
        };
        if let Ok(event) = event {
            push(&seen, |s| {
                s.events.extend(event.split(',').map(str::to_owned))
            });
        }
    }
}

impl Watch {
    /// Listens on the bus at `address`; returns once the match rules are in place.
    pub fn new(address: &str) -> Self {
        Self::on(&[address])
    }

    /// Listens on every bus of `addresses`; returns once the match rules are in
    /// place on each. A listener ends when its bus does.
    pub fn on(addresses: &[&str]) -> Self {
        let seen = Arc::new((Mutex::new(Seen::default()), Condvar::new()));
        for address in addresses {
            let (addr, s) = ((*address).to_owned(), seen.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                if let Err(e) = rt.block_on(listen(addr, s.clone())) {
                    push(&s, |s| s.events.push(format!("error:{e}")));
                }
            });
        }
        let watch = Self { seen };
        watch.wait_until(
            |s| s.listening == addresses.len(),
            "the listeners to subscribe",
        );
        watch
    }

    fn wait_until(&self, done: impl Fn(&Seen) -> bool, what: &str) {
        let (lock, cv) = &*self.seen;
        let t = Instant::now();
        let mut s = lock.lock().unwrap_or_else(|p| p.into_inner());
        while !done(&s) {
            let left = LIMIT.saturating_sub(t.elapsed());
            assert!(
                !left.is_zero(),
                "waited {LIMIT:?} for {what}; saw {:?}",
                s.events
            );
            s = cv
                .wait_timeout(s, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// How many events have been seen: a mark to wait from.
    pub fn mark(&self) -> usize {
        self.seen
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .len()
    }

    /// Waits for `event` to arrive after `mark`.
    pub fn wait_for(&self, mark: usize, event: &str) {
        self.wait_until(
            |s| s.events.iter().skip(mark).any(|e| e == event),
            &format!("{event} after event {mark}"),
        );
    }

    /// Every event seen so far.
    pub fn events(&self) -> Vec<String> {
        self.seen
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .events
            .clone()
    }
}
