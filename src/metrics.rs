//! Fleet metrics: counters and latency histograms of this process (operations by
//! kind and outcome, capture time, each AwareID call's time and result, camera
//! errors, frames and bad frames, feedback codes), in a Prometheus registry of
//! their own. The D-Bus method `GetStatistics` returns them as name -> value, and
//! the daemon writes them in Prometheus's text format to `daemon.metrics_textfile`
//! for node_exporter's textfile collector, atomically (a temporary file renamed
//! over the old one). No label holds a username or anything a person gave.

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    operations: IntCounterVec,
    operation_seconds: HistogramVec,
    capture_seconds: HistogramVec,
    awareid_calls: IntCounterVec,
    awareid_seconds: HistogramVec,
    camera_errors: IntCounter,
    frames: IntCounter,
    bad_frames: IntCounter,
    feedback: IntCounterVec,
    /// The site's gauges, registered when a door of a site first reports
    /// (a terminal alone shows none).
    site: OnceLock<Option<SiteGauges>>,
}

struct SiteGauges {
    connected: IntGauge,
    last_contact: IntGauge,
    revision: IntGauge,
    outbox: IntGauge,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Made<IntGauge> {
    register(registry, IntGauge::new(name, help)?)
}

impl SiteGauges {
    fn new(r: &Registry) -> Made<Self> {
        Ok(Self {
            connected: gauge(
                r,
                "site_connected",
                "1 while the link to the site's hub is up.",
            )?,
            last_contact: gauge(
                r,
                "site_last_contact_seconds",
                "When the site's hub was last heard from (Unix seconds; 0: never).",
            )?,
            revision: gauge(
                r,
                "site_revision_applied",
                "The last revision of the site's bucket applied here.",
            )?,
            outbox: gauge(
                r,
                "site_outbox_entries",
                "This door's enrollments and removals waiting for the hub.",
            )?,
        })
    }
}

/// The one instance (metrics are the process's, as node_exporter shows them).
/// `None` only if the registry could not be made, which the names, constants
/// checked by the unit tests, rule out; callers then count nothing.
pub fn global() -> Option<&'static Metrics> {
    static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| Metrics::new().ok());
    METRICS.as_ref()
}

type Made<T> = Result<T, prometheus::Error>;

fn counter(registry: &Registry, name: &str, help: &str) -> Made<IntCounter> {
    register(registry, IntCounter::new(name, help)?)
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> Made<IntCounterVec> {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels)?)
}

fn histograms(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> Made<HistogramVec> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, HistogramVec::new(opts, labels)?)
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, c: C) -> Made<C> {
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

/// The outcome label of an AwareID call: its HTTP status class, or `transport`
/// when no answer came (refused, timed out, TLS, the proxy).
///
/// ```
/// use facecapture::metrics::call_result;
/// assert_eq!(call_result(Some(200)), "2xx");
/// assert_eq!(call_result(Some(503)), "5xx");
/// assert_eq!(call_result(None), "transport");
/// ```
pub fn call_result(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
        None => "transport",
    }
}

impl Metrics {
    fn new() -> Made<Self> {
        let r = Registry::new_custom(Some("facecaptured".into()), None)?;
        Ok(Self {
            operations: counters(
                &r,
                "operations_total",
                "Operations ended, by kind and outcome (the audit record's OUTCOME).",
                &["operation", "outcome"],
            )?,
            operation_seconds: histograms(
                &r,
                "operation_duration_seconds",
                "Time from the D-Bus call to its reply.",
                &["operation"],
                &[0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0],
            )?,
            capture_seconds: histograms(
                &r,
                "capture_duration_seconds",
                "Time from opening the camera to a packaged face (or the capture's end).",
                &["outcome"],
                &[0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0],
            )?,
            awareid_calls: counters(
                &r,
                "awareid_calls_total",
                "AwareID HTTP exchanges, by call and result (status class or transport).",
                &["call", "result"],
            )?,
            awareid_seconds: histograms(
                &r,
                "awareid_call_duration_seconds",
                "Time per AwareID HTTP exchange.",
                &["call"],
                &[0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0],
            )?,
            camera_errors: counter(
                &r,
                "camera_errors_total",
                "Operations the camera failed (missing, busy, unplugged, cannot stream).",
            )?,
            frames: counter(&r, "frames_total", "Frames taken from the camera.")?,
            bad_frames: counter(
                &r,
                "bad_frames_total",
                "Frames skipped as unusable (short, corrupt, undecodable).",
            )?,
            feedback: counters(
                &r,
                "feedback_total",
                "CaptureFeedback codes sent, by code.",
                &["code"],
            )?,
            registry: r,
            site: OnceLock::new(),
        })
    }

    /// The site link's state now (see [`crate::site::SiteState`]).
    pub fn site(&self, state: &crate::site::SiteState) {
        let Some(g) = self
            .site
            .get_or_init(|| SiteGauges::new(&self.registry).ok())
        else {
            return;
        };
        let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        g.connected.set(i64::from(state.connected));
        g.last_contact.set(state.last_contact);
        g.revision.set(clamp(state.applied));
        g.outbox.set(clamp(state.outbox));
    }

    /// An operation ended with `outcome` after `took`.
    pub fn operation(&self, operation: &str, outcome: &str, took: Duration) {
        self.operations
            .with_label_values(&[operation, outcome])
            .inc();
        self.operation_seconds
            .with_label_values(&[operation])
            .observe(took.as_secs_f64());
    }

    /// A capture ended with `outcome` after `took`, having read `frames` frames of
    /// which `bad` were unusable.
    pub fn capture(&self, outcome: &str, took: Duration, frames: u64, bad: u64) {
        self.capture_seconds
            .with_label_values(&[outcome])
            .observe(took.as_secs_f64());
        self.frames.inc_by(frames);
        self.bad_frames.inc_by(bad);
    }

    /// An AwareID exchange `call` took `took` and answered `status` (None: no answer).
    pub fn awareid_call(&self, call: &str, status: Option<u16>, took: Duration) {
        self.awareid_calls
            .with_label_values(&[call, call_result(status)])
            .inc();
        self.awareid_seconds
            .with_label_values(&[call])
            .observe(took.as_secs_f64());
    }

    /// The camera failed an operation.
    pub fn camera_error(&self) {
        self.camera_errors.inc();
    }

    /// A CaptureFeedback code was sent.
    pub fn feedback(&self, code: &str) {
        self.feedback.with_label_values(&[code]).inc();
    }

    /// Every series as name (with its labels, as Prometheus writes them) -> value;
    /// histograms as their `_count` and `_sum`.
    pub fn snapshot(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for family in self.registry.gather() {
            for m in family.get_metric() {
                let labels: Vec<String> = m
                    .get_label()
                    .iter()
                    .map(|l| format!("{}={:?}", l.name(), l.value()))
                    .collect();
                let labels = if labels.is_empty() {
                    String::new()
                } else {
                    format!("{{{}}}", labels.join(","))
                };
                let name = family.name();
                match family.get_field_type() {
                    prometheus::proto::MetricType::HISTOGRAM => {
                        let h = m.get_histogram();
                        out.push((format!("{name}_count{labels}"), h.get_sample_count() as f64));
                        out.push((format!("{name}_sum{labels}"), h.get_sample_sum()));
                    }
                    prometheus::proto::MetricType::GAUGE => {
                        out.push((format!("{name}{labels}"), m.get_gauge().get_value()));
                    }
                    _ => out.push((format!("{name}{labels}"), m.get_counter().get_value())),
                }
            }
        }
        out
    }

    /// The metrics in Prometheus's text format (version 0.0.4).
    pub fn text(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# cannot encode the metrics: {e}\n"))
    }

    /// Writes [`Self::text`] to `path` atomically: a temporary file beside it,
    /// flushed, then renamed over it (node_exporter never reads half a file).
    pub fn write_textfile(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(std::path::Path::new("/"));
        let mut tmp = tempfile::Builder::new()
            .prefix(".facecaptured-metrics")
            .suffix(".tmp")
            .tempfile_in(dir)?;
        tmp.write_all(self.text().as_bytes())?;
        tmp.as_file().sync_all()?;
        let file = tmp.persist(path).map_err(|e| e.error)?;
        // Readable by node_exporter, whoever runs it.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_show_in_the_snapshot_and_the_text() {
        let m = Metrics::new().expect("metrics");
        m.operation("authenticate", "granted", Duration::from_millis(700));
        m.operation("authenticate", "granted", Duration::from_millis(900));
        m.operation("enroll", "stored", Duration::from_secs(2));
        m.awareid_call("verifyFace", Some(503), Duration::from_millis(40));
        m.capture("packaged", Duration::from_millis(600), 12, 1);
        m.feedback("face-too-far");
        m.camera_error();
        let snap: std::collections::HashMap<_, _> = m.snapshot().into_iter().collect();
        let get = |k: &str| snap.get(k).copied();
        assert_eq!(
            get(r#"facecaptured_operations_total{operation="authenticate",outcome="granted"}"#),
            Some(2.0)
        );
        assert_eq!(
            get(r#"facecaptured_operation_duration_seconds_sum{operation="authenticate"}"#),
            Some(1.6)
        );
        assert_eq!(
            get(r#"facecaptured_awareid_calls_total{call="verifyFace",result="5xx"}"#),
            Some(1.0)
        );
        assert_eq!(get("facecaptured_frames_total"), Some(12.0));
        assert_eq!(get("facecaptured_bad_frames_total"), Some(1.0));
        assert_eq!(get("facecaptured_camera_errors_total"), Some(1.0));
        assert_eq!(
            get(r#"facecaptured_feedback_total{code="face-too-far"}"#),
            Some(1.0)
        );
        let text = m.text();
        assert!(text.contains("# TYPE facecaptured_operations_total counter"));
        assert!(text.contains(
            r#"facecaptured_operation_duration_seconds_bucket{operation="enroll",le="2"} 1"#
        ));
    }

    #[test]
    fn the_textfile_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("facecaptured.prom");
        std::fs::write(&path, "stale").expect("write");
        let m = Metrics::new().expect("metrics");
        m.operation("enroll", "failed", Duration::from_secs(1));
        m.write_textfile(&path).expect("textfile");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, m.text());
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .collect();
        assert_eq!(left.len(), 1, "a temporary file was left");
        let e = m
            .write_textfile(&dir.path().join("missing/f.prom"))
            .expect_err("no such directory");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    }
}
