//! The installer's camera check (`CameraCheck`, `facecapturectl camera-check`): the
//! capture loop run for a set time without AwareID, every frame judged by the
//! quality gate as an operation judges it, and the figures an installer aims and
//! lights a camera by, with plain advice. On request, one downscaled frame with
//! the face box and the area the face centre must fall in drawn on it, as PNG:
//! the daemon hands it to its (root) caller and never writes it anywhere.

use super::quality::{self, Feedback};
use super::{CaptureError, FeedbackFilter, Pacer, Settings, Tick};
use crate::camera::FrameSource;
use crate::camera::frame::{Gray, Wiped};
use crate::detect::{Detector, FaceBox};
use image::{Rgb, RgbImage};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

pub use facecapture_dbus::CameraReport;

/// The longest check, in seconds (the CameraCheck argument's bound).
pub const MAX_SECONDS: u32 = 30;
/// The snapshot is at most this wide.
pub const SNAPSHOT_PX: u32 = 320;
/// More bad frames than this share is a cable, bandwidth or format problem.
const BAD_SHARE: f64 = 0.05;
/// More dropped frames than this share of those delivered: the board or the bus
/// cannot keep up.
const DROPPED_SHARE: f64 = 0.1;
/// A camera delivering less than this share of the rate granted is slowed down
/// (most often by a long exposure in poor light)...
const SLOW_SHARE: f64 = 0.6;
/// ...unless the daemon spent more than this share of the time judging frames:
/// then the board set the pace, not the camera.
const BOARD_BOUND: f64 = 0.7;
/// A board that judges fewer frames a second than this makes captures slow.
const SLOW_BOARD_FPS: f64 = 3.0;
/// Faces in fewer frames than this share: people are not where the camera looks.
const FACE_SHARE: f64 = 0.5;
/// More than one face in more than this share of the frames.
const CROWD_SHARE: f64 = 0.2;

/// What a check found: the report, and the snapshot when one was asked for.
pub struct Check {
    /// The figures and advice.
    pub report: CameraReport,
    /// The marked-up frame as PNG (biometric data: wiped on drop).
    pub snapshot: Option<Zeroizing<Vec<u8>>>,
}

/// Per-frame figures, summed up at the end.
#[derive(Default)]
struct Tally {
    judged: u64,
    faces: u64,
    widths: Vec<f64>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    brightness: Vec<f64>,
    dark: Vec<f64>,
    face_brightness: Vec<f64>,
    sharpness: Vec<f64>,
    judge_ms: Vec<f64>,
    counts: HashMap<Feedback, u64>,
    first_ms: Option<f64>,
    last_ms: f64,
}

impl Tally {
    fn add(&mut self, gray: &Gray, verdict: &quality::Verdict, captured_ms: f64) {
        self.judged += 1;
        self.first_ms.get_or_insert(captured_ms);
        self.last_ms = captured_ms;
        *self.counts.entry(verdict.feedback).or_default() += 1;
        self.brightness.push(quality::mean(gray));
        self.dark.push(verdict.dark_share);
        let Some(face) = verdict.face else {
            return;
        };
        let (w, h) = (f64::from(gray.width()), f64::from(gray.height()));
        self.faces += 1;
        self.widths.push(f64::from(face.width));
        self.xs
            .push((f64::from(face.x) + f64::from(face.width) / 2.0) / w);
        self.ys
            .push((f64::from(face.y) + f64::from(face.height) / 2.0) / h);
        if let Some((mean, sharpness)) = quality::face_figures(gray, &face) {
            self.face_brightness.push(mean);
            self.sharpness.push(sharpness);
        }
    }

    /// The code of most frames; ties go to the one the gate tests first.
    fn commonest(&self) -> Option<Feedback> {
        Feedback::ALL
            .iter()
            .copied()
            .filter(|f| self.counts.contains_key(f))
            .max_by_key(|f| (self.counts[f], std::cmp::Reverse(*f as usize)))
    }
}

/// The median of `v` (0 for none).
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// Runs the capture loop on `source` for `duration`, judging every frame;
/// `on_feedback` hears each change of feedback code. `snapshot`: also render the
/// last frame with a face in it (or the last frame) for aiming. Ends early with
/// the camera's error (stalled, unplugged) or Cancelled.
pub fn camera_check(
    source: &mut dyn FrameSource,
    detector: &mut Detector,
    settings: &Settings,
    duration: Duration,
    snapshot: bool,
    on_feedback: &mut dyn FnMut(Feedback),
    cancel: &dyn super::Cancel,
) -> Result<Check, CaptureError> {
    let started = Instant::now();
    // Counted from the first frame: a camera kept open (camera.keep_open) went on
    // streaming unread before the check, and those frames were not the check's.
    let mut dropped_before = None;
    let mut pacer = Pacer::new(cancel, duration);
    let mut filter = FeedbackFilter::default();
    let mut tally = Tally::default();
    let mut kept: Option<(Gray, Option<FaceBox>)> = None;
    // The check judges frames as an operation does (its ms per frame too).
    let mut tracker = crate::detect::Tracker::default();
    loop {
        let frame = match pacer.next(source)? {
            Tick::Frame(f) => f,
            Tick::Timeout => break,
        };
        dropped_before.get_or_insert_with(|| source.dropped());
        let judging = Instant::now();
        let (verdict, gray) = match super::judge_tracked(&frame, detector, &mut tracker, settings) {
            Ok(judged) => judged,
            Err(e) => {
                pacer.skipped(source, &e);
                continue;
            }
        };
        tally
            .judge_ms
            .push(judging.elapsed().as_secs_f64() * 1000.0);
        tally.add(&gray, &verdict, frame.captured_ms);
        if filter.changed(verdict.feedback) {
            on_feedback(verdict.feedback);
        }
        let keep = verdict.face.is_some() || kept.as_ref().is_none_or(|(_, f)| f.is_none());
        if snapshot && keep {
            kept = Some((gray, verdict.face));
        }
    }
    let dropped = source
        .dropped()
        .saturating_sub(dropped_before.unwrap_or(u64::MAX));
    let report = tally.report(&*source, &pacer.stats, dropped, settings, started.elapsed());
    let snapshot = match kept {
        Some((gray, face)) => Some(render(&gray, face).map_err(CaptureError::Encode)?),
        None => None,
    };
    tracing::info!(
        device = report.device.as_str(),
        driver = report.driver.as_str(),
        format = report.format.as_str(),
        width = report.width,
        height = report.height,
        frames = report.frames,
        bad_frames = report.bad_frames,
        dropped_frames = report.dropped_frames,
        fps_measured = report.fps_measured,
        face_share = report.face_share,
        commonest_feedback = report.commonest_feedback.as_str(),
        "camera check finished"
    );
    Ok(Check { report, snapshot })
}

impl Tally {
    /// The check's report: the source's granted format, the figures counted,
    /// and the advice they call for.
    fn report(
        mut self,
        source: &dyn FrameSource,
        stats: &super::Stats,
        dropped: u64,
        settings: &Settings,
        elapsed: Duration,
    ) -> CameraReport {
        let info = source.info();
        let span_s = self.first_ms.map_or(0.0, |f| (self.last_ms - f) / 1000.0);
        let rate = |n: f64| if span_s > 0.0 { n / span_s } else { 0.0 };
        let judged = self.judged as f64;
        let share = |n: u64| {
            if self.judged > 0 {
                n as f64 / judged
            } else {
                0.0
            }
        };
        let compliant = self.counts.get(&Feedback::FaceCompliant).copied();
        let mut report = CameraReport {
            device: source.name().to_owned(),
            driver: info.driver,
            card: info.card,
            format: info.format,
            width: info.width,
            height: info.height,
            fps_granted: info.fps,
            fps_measured: rate((judged - 1.0).max(0.0) + dropped as f64),
            fps_judged: rate((judged - 1.0).max(0.0)),
            judge_ms_median: median(&mut self.judge_ms),
            seconds: elapsed.as_secs_f64(),
            frames: stats.frames,
            bad_frames: stats.bad_frames,
            dropped_frames: dropped,
            face_share: share(self.faces),
            compliant_share: share(compliant.unwrap_or(0)),
            face_width_median: median(&mut self.widths).round() as u32,
            min_face_px: settings.min_face_px,
            face_x_median: median(&mut self.xs),
            face_y_median: median(&mut self.ys),
            brightness_median: median(&mut self.brightness),
            dark_share_median: median(&mut self.dark),
            face_brightness_median: median(&mut self.face_brightness),
            sharpness_median: median(&mut self.sharpness),
            sharpness_min: quality::BLUR_VARIANCE,
            commonest_feedback: self.commonest().map_or("", Feedback::as_str).to_owned(),
            feedback_counts: self
                .counts
                .iter()
                .map(|(f, n)| (f.as_str().to_owned(), *n))
                .collect(),
            advice: Vec::new(),
        };
        // A multiple-faces frame counts as a face frame; the crowd advice needs its share.
        let crowd = share(
            self.counts
                .get(&Feedback::MultipleFaces)
                .copied()
                .unwrap_or(0),
        );
        report.advice = advice(&report, crowd);
        report
    }
}

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// Plain advice from a report, most important first: the camera's delivery, then
/// the light, then where the faces are, then their sharpness. `crowd` is the
/// share of frames with more than one face. Left and right are as the camera sees
/// the scene (the picture's left), with the turn it needs.
///
/// ```
/// use facecapture::capture::check::{advice, CameraReport};
/// let mut r = CameraReport { frames: 30, face_share: 1.0, compliant_share: 0.2,
///     face_width_median: 150, min_face_px: 100, width: 640, height: 480,
///     face_x_median: 0.5, face_y_median: 0.1, brightness_median: 120.0,
///     face_brightness_median: 120.0, sharpness_median: 200.0, sharpness_min: 40.0,
///     ..Default::default() };
/// assert!(advice(&r, 0.0)[0].starts_with("faces sit high in the frame"));
/// r.face_y_median = 0.45;
/// assert!(advice(&r, 0.0)[0].starts_with("framing is good"));
/// ```
pub fn advice(r: &CameraReport, crowd: f64) -> Vec<String> {
    let mut out = Vec::new();
    let judged = r.frames.saturating_sub(r.bad_frames);
    if r.frames == 0 {
        out.push(format!(
            "the camera delivered no frame in {:.1} s: check the cable and camera.device",
            r.seconds
        ));
        return out;
    }
    let bad = r.bad_frames as f64 / r.frames as f64;
    if bad > BAD_SHARE {
        out.push(format!(
            "{} of frames were unusable ({} of {}): check the cable and the USB port, or put \
             another format first in camera.formats",
            pct(bad),
            r.bad_frames,
            r.frames
        ));
    }
    if judged == 0 {
        return out;
    }
    // When the board spends nearly all its time judging, it sets the pace: fewer
    // frames and the driver's drops are its doing, not the camera's.
    let board_bound = r.judge_ms_median * r.fps_judged / 1000.0 > BOARD_BOUND;
    if board_bound && r.fps_judged < SLOW_BOARD_FPS {
        out.push(format!(
            "the board judges only {:.1} frames/s ({:.0} ms a frame): captures will be slow; \
             lower camera.width and camera.height",
            r.fps_judged, r.judge_ms_median
        ));
    }
    // Rates and drops need two judged frames at least (fps_judged is 0 before).
    let timed = r.fps_judged > 0.0;
    let delivered = judged + r.dropped_frames;
    if timed && !board_bound && r.dropped_frames as f64 > DROPPED_SHARE * delivered as f64 {
        out.push(format!(
            "the driver dropped {} of {} frames though the board kept up: check the USB \
             bandwidth (another device on the same hub) or lower camera.fps",
            r.dropped_frames, delivered
        ));
    }
    if timed
        && !board_bound
        && r.fps_granted > 0.0
        && r.fps_measured > 0.0
        && r.fps_measured < SLOW_SHARE * r.fps_granted
    {
        out.push(format!(
            "the camera delivers {:.1} frames/s of the {:.0} granted: in poor light most \
             cameras lengthen the exposure; add light",
            r.fps_measured, r.fps_granted
        ));
    }
    out.extend(framing(r, crowd));
    out
}

/// The advice on the light and on where faces sit, how large and how sharp; one
/// line saying the framing is good when nothing is wrong.
fn framing(r: &CameraReport, crowd: f64) -> Vec<String> {
    let mut framing = Vec::new();
    let judged = r.frames.saturating_sub(r.bad_frames);
    if r.dark_share_median > quality::DARK_SHARE {
        framing.push(format!(
            "too dark: {} of pixels below {}: add light at the door, or raise the camera's \
             exposure",
            pct(r.dark_share_median),
            quality::DARK_LEVEL
        ));
        // Where the faces are cannot be judged in the dark.
        return framing;
    }
    if r.face_share == 0.0 {
        framing.push(format!(
            "no face in {judged} frames: stand where people stand at the door and look at the \
             camera; if the picture is on its side, set camera.rotation"
        ));
        return framing;
    }
    if r.face_share < FACE_SHARE {
        framing.push(format!(
            "a face in only {} of frames: aim the camera where people stand at the door",
            pct(r.face_share)
        ));
    }
    if crowd > CROWD_SHARE {
        framing.push(format!(
            "more than one face in {} of frames: aim the camera so that only the person at the \
             door is in view",
            pct(crowd)
        ));
    }
    placement(r, &mut framing);
    if r.face_brightness_median > 0.0 && r.face_brightness_median < quality::DARK_FACE_MEAN {
        framing.push(format!(
            "faces are too dark (mean level {:.0}, at least {:.0} wanted): light the faces from \
             the front; a bright window behind people darkens them",
            r.face_brightness_median,
            quality::DARK_FACE_MEAN
        ));
    }
    if r.sharpness_median > 0.0 && r.sharpness_median < r.sharpness_min {
        framing.push(format!(
            "faces are blurry (sharpness {:.0}, at least {:.0} wanted): clean and focus the lens; \
             in poor light add light (long exposures blur)",
            r.sharpness_median, r.sharpness_min
        ));
    }
    if framing.is_empty() {
        framing.push(format!(
            "framing is good: a face in {} of frames, {} compliant",
            pct(r.face_share),
            pct(r.compliant_share)
        ));
    }
    framing
}

/// The advice on where faces sit in the frame and how large they are.
fn placement(r: &CameraReport, framing: &mut Vec<String>) {
    let short_side = f64::from(r.width.min(r.height));
    if r.face_width_median < r.min_face_px {
        framing.push(format!(
            "faces are {} px wide, narrower than capture.min_face_px ({}): people stand too far; \
             mount the camera closer to where they stand, or raise camera.width and camera.height",
            r.face_width_median, r.min_face_px
        ));
    } else if short_side > 0.0 && f64::from(r.face_width_median) > quality::CLOSE_SHARE * short_side
    {
        framing.push(format!(
            "faces are {} px wide, more than {} of the frame: people stand too close; mount the \
             camera further back, or lower camera.width and camera.height",
            r.face_width_median,
            pct(quality::CLOSE_SHARE)
        ));
    }
    let (tx, ty) = (quality::CENTRE_TOLERANCE_X, quality::CENTRE_TOLERANCE_Y);
    if r.face_x_median < 0.5 - tx {
        framing.push(format!(
            "faces sit left in the frame (at {} of its width, as the camera sees it): turn the \
             camera to its left (your right as you face it)",
            pct(r.face_x_median)
        ));
    } else if r.face_x_median > 0.5 + tx {
        framing.push(format!(
            "faces sit right in the frame (at {} of its width, as the camera sees it): turn the \
             camera to its right (your left as you face it)",
            pct(r.face_x_median)
        ));
    }
    if r.face_y_median < quality::IDEAL_Y - ty {
        framing.push(format!(
            "faces sit high in the frame (at {} of its height; {} to {} is right): tilt the \
             camera up, or mount it higher",
            pct(r.face_y_median),
            pct(quality::IDEAL_Y - ty),
            pct(quality::IDEAL_Y + ty)
        ));
    } else if r.face_y_median > quality::IDEAL_Y + ty {
        framing.push(format!(
            "faces sit low in the frame (at {} of its height; {} to {} is right): tilt the \
             camera down, or mount it lower",
            pct(r.face_y_median),
            pct(quality::IDEAL_Y - ty),
            pct(quality::IDEAL_Y + ty)
        ));
    }
}

const TOLERANCE: Rgb<u8> = Rgb([0, 200, 0]);
const FACE: Rgb<u8> = Rgb([255, 200, 0]);

/// `gray` downscaled to at most SNAPSHOT_PX wide, in colour, with the area the
/// face centre must fall in (green) and the face box and centre (amber), as PNG.
fn render(gray: &Gray, face: Option<FaceBox>) -> Result<Zeroizing<Vec<u8>>, String> {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 {
        return Err("the frame has no pixels".into());
    }
    let scale = (f64::from(SNAPSHOT_PX) / f64::from(w)).min(1.0);
    let (sw, sh) = (
        ((f64::from(w) * scale).round() as u32).max(1),
        ((f64::from(h) * scale).round() as u32).max(1),
    );
    let small = Wiped(image::imageops::resize(
        &**gray,
        sw,
        sh,
        image::imageops::FilterType::Triangle,
    ));
    let mut rgb = Wiped(RgbImage::from_fn(sw, sh, |x, y| {
        let v = small.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    }));
    let (fw, fh) = (f64::from(sw), f64::from(sh));
    let (tx, ty) = (quality::CENTRE_TOLERANCE_X, quality::CENTRE_TOLERANCE_Y);
    rectangle(
        &mut rgb,
        ((0.5 - tx) * fw, (quality::IDEAL_Y - ty) * fh),
        ((0.5 + tx) * fw, (quality::IDEAL_Y + ty) * fh),
        TOLERANCE,
    );
    if let Some(f) = face {
        let (x0, y0) = (f64::from(f.x) * scale, f64::from(f.y) * scale);
        let (x1, y1) = (
            x0 + f64::from(f.width) * scale,
            y0 + f64::from(f.height) * scale,
        );
        rectangle(&mut rgb, (x0, y0), (x1, y1), FACE);
        let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
        rectangle(&mut rgb, (cx - 3.0, cy), (cx + 3.0, cy), FACE);
        rectangle(&mut rgb, (cx, cy - 3.0), (cx, cy + 3.0), FACE);
    }
    let mut png = Zeroizing::new(Vec::new());
    image::codecs::png::PngEncoder::new(&mut *png)
        .write_image(&rgb, sw, sh, image::ExtendedColorType::Rgb8)
        .map_err(|e| format!("snapshot: {e}"))?;
    Ok(png)
}

use image::ImageEncoder;

/// A 2-pixel outline from `a` to `b` (corners), clipped to the picture; a line
/// when the two share a coordinate.
fn rectangle(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), colour: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, y0) = (a.0.round() as i64, a.1.round() as i64);
    let (x1, y1) = (b.0.round() as i64, b.1.round() as i64);
    let mut put = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    };
    for x in x0..=x1 {
        for t in 0..2 {
            put(x, y0 + t);
            put(x, y1 - t);
        }
    }
    for y in y0..=y1 {
        for t in 0..2 {
            put(x0 + t, y);
            put(x1 - t, y);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> CameraReport {
        CameraReport {
            frames: 40,
            width: 640,
            height: 480,
            fps_granted: 30.0,
            fps_measured: 29.0,
            fps_judged: 29.0,
            judge_ms_median: 10.0,
            face_share: 1.0,
            compliant_share: 0.9,
            face_width_median: 160,
            min_face_px: 100,
            face_x_median: 0.5,
            face_y_median: 0.45,
            brightness_median: 120.0,
            dark_share_median: 0.05,
            face_brightness_median: 130.0,
            sharpness_median: 300.0,
            sharpness_min: 40.0,
            ..CameraReport::default()
        }
    }

    fn first(r: &CameraReport) -> String {
        advice(r, 0.0).remove(0)
    }

    #[test]
    fn each_fault_gets_its_own_advice() {
        assert!(first(&good()).starts_with("framing is good: a face in 100% of frames, 90%"));
        type Spoil = fn(&mut CameraReport);
        let cases: Vec<(&str, Spoil)> = vec![
            ("the camera delivered no frame", |r| r.frames = 0),
            ("25% of frames were unusable (10 of 40)", |r| {
                r.bad_frames = 10
            }),
            (
                "the driver dropped 20 of 60 frames though the board kept up",
                |r| r.dropped_frames = 20,
            ),
            ("the board judges only 2.0 frames/s (450 ms a frame)", |r| {
                (r.fps_judged, r.fps_measured, r.judge_ms_median) = (2.0, 2.0, 450.0);
                r.dropped_frames = 50
            }),
            ("the camera delivers 7.5 frames/s of the 30 granted", |r| {
                r.fps_measured = 7.5
            }),
            ("too dark: 82% of pixels below 40", |r| {
                r.dark_share_median = 0.82
            }),
            ("no face in 40 frames", |r| r.face_share = 0.0),
            ("a face in only 30% of frames", |r| r.face_share = 0.3),
            (
                "faces are 80 px wide, narrower than capture.min_face_px (100)",
                |r| r.face_width_median = 80,
            ),
            ("faces are 300 px wide, more than 60% of the frame", |r| {
                r.face_width_median = 300
            }),
            ("faces sit left in the frame", |r| r.face_x_median = 0.2),
            ("faces sit right in the frame", |r| r.face_x_median = 0.8),
            ("faces sit high in the frame (at 15% of its height", |r| {
                r.face_y_median = 0.15
            }),
            ("faces sit low in the frame", |r| r.face_y_median = 0.8),
            ("faces are too dark (mean level 30", |r| {
                r.face_brightness_median = 30.0
            }),
            ("faces are blurry (sharpness 12", |r| {
                r.sharpness_median = 12.0
            }),
        ];
        for (want, spoil) in cases {
            let mut r = good();
            spoil(&mut r);
            let got = first(&r);
            assert!(got.starts_with(want), "{want:?}: got {got:?}");
        }
        // A board that sets a bearable pace is no fault, nor are the camera's
        // frames it had no time for.
        let mut busy = good();
        (busy.fps_judged, busy.fps_measured, busy.judge_ms_median) = (8.0, 8.0, 120.0);
        busy.dropped_frames = 80;
        assert!(
            first(&busy).starts_with("framing is good"),
            "{:?}",
            advice(&busy, 0.0)
        );
        let crowd = advice(&good(), 0.5);
        assert!(
            crowd[0].starts_with("more than one face in 50% of frames"),
            "{crowd:?}"
        );
        // Up and down are the turn the camera needs, not where the face is.
        let mut high = good();
        high.face_y_median = 0.1;
        assert!(first(&high).contains("tilt the camera up"));
    }

    #[test]
    fn the_snapshot_is_a_small_png_with_the_marks_drawn() {
        let gray = Wiped(image::GrayImage::from_pixel(640, 480, image::Luma([100])));
        let face = FaceBox {
            x: 240,
            y: 100,
            width: 160,
            height: 160,
            score: 1.0,
        };
        let png = render(&gray, Some(face)).expect("png");
        let img = image::load_from_memory(&png).expect("decodes").to_rgb8();
        assert_eq!(img.dimensions(), (320, 240));
        // The tolerance box's top-left corner, the face box's, and plain frame.
        assert_eq!(*img.get_pixel(96, 60), TOLERANCE);
        assert_eq!(*img.get_pixel(120, 50), FACE);
        assert_eq!(*img.get_pixel(10, 10), Rgb([100, 100, 100]));
    }
}
