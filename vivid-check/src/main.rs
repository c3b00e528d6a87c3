//! Runs inside a qemu guest with the kernel's `vivid` driver loaded (see
//! tests/vivid/boot.sh, run by tests/vivid.rs): proves the `v4l` frame source and
//! the capture pipeline against a real V4L2 driver.
//!
//! 0. api: the nodes are single-planar, or multi-planar when vivid was loaded
//!    with `multiplanar=2` (tests/vivid/boot.sh with VIVID_MULTIPLANAR=1); the
//!    daemon's source uses whichever the node offers.
//! 1. webcam: the capture-only vivid instance streams; formats are negotiated
//!    (MJPG asked first, which vivid lacks, so YUYV) and frames convert.
//!    formats: every other format vivid offers that the camera code converts
//!    (UYVY, NV12, NV21, NV16, GREY, Y10, Y16; with the multi-planar API also
//!    NV12M, NV21M, NV16M in two planes) streams, and its frames show the same
//!    picture as YUYV's.
//! 2. loopback: a face photo, converted to YUYV, is written to vivid's HDMI output;
//!    "Loop Video" hands it to the HDMI capture node, where the pipeline must find
//!    the face and return a compliant package.
//!    camera check: the installer's check on the webcam's test pattern (granted
//!    format, size and rate; no face, and the advice says so) and on the HDMI
//!    loopback (the face seen, the framing good).
//!    first frame: the time from an operation's start to its first frame, with the
//!    camera opened then (the default) and kept open between operations
//!    (`camera.keep_open`; the frames it queued while idle are discarded first,
//!    so the operation sees no one who stood there before).
//! 3. disconnect: vivid's "Disconnect" control during a stream ends the operation
//!    with CameraUnavailable; the next operation opens the camera and works.
//!
//! Prints `VIVID-CHECK <step> ok ...` lines; exits non-zero on the first failure.

use facecapture::camera::frame::rgb_to_yuyv;
use facecapture::camera::v4l2::V4l2Source;
use facecapture::camera::v4l2::sys::{self, Mapping, zeroed};
use facecapture::camera::{Camera, CameraError, FrameSource, Next};
use facecapture::capture::{self, CaptureError, Settings};
use facecapture::config::{CameraConfig, CameraSource};
use facecapture::detect::Detector;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use v4l::v4l_sys::*;

static FACE: &[u8] = include_bytes!("../../tests/fixtures/faces/astronaut.jpg");

type Res<T> = Result<T, String>;
type Ioc = v4l::v4l2::vidioc::_IOC_TYPE;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_writer(std::io::stderr)
        .init();
    let code = match run() {
        Ok(()) => 0,
        Err(e) => {
            println!("VIVID-CHECK failed: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run() -> Res<()> {
    let nodes = find_nodes()?;
    println!("VIVID-CHECK nodes {nodes:?}");
    println!(
        "VIVID-API {}",
        if nodes.multi {
            "multi-planar"
        } else {
            "single-planar"
        }
    );
    webcam(&nodes.webcam)?;
    formats(&nodes.webcam, nodes.multi)?;
    webcam_check(&nodes.webcam)?;
    first_frame(&nodes.webcam)?;
    loopback(&nodes.hdmi_in, &nodes.hdmi_out, nodes.multi)?;
    disconnect(&nodes.webcam)?;
    Ok(())
}

#[derive(Debug)]
struct Nodes {
    webcam: String,
    hdmi_in: String,
    hdmi_out: String,
    /// The nodes offer the multi-planar API only (vivid's `multiplanar=2`).
    multi: bool,
}

/// One ioctl, retried on EINTR (the library's [`sys::xioctl`]).
fn ioctl<T>(fd: i32, request: Ioc, arg: &mut T) -> Res<()> {
    // SAFETY: each call site passes the structure its request expects.
    unsafe { sys::xioctl(fd, request, arg) }.map_err(|e| format!("ioctl {request:#x}: {e}"))
}

/// _IOWR('V', nr, T): the DV timing ioctls the v4l crate does not define.
fn iowr<T>(nr: Ioc) -> Ioc {
    (3 << 30) | ((std::mem::size_of::<T>() as Ioc) << 16) | (Ioc::from(b'V') << 8) | nr
}

fn open(path: &str) -> Res<std::fs::File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("{path}: {e}"))
}

fn find_nodes() -> Res<Nodes> {
    let (mut webcam, mut hdmi_in, mut hdmi_out) = (None, None, None);
    let mut multi = false;
    for i in 0..16 {
        let path = format!("/dev/video{i}");
        let Ok(f) = open(&path) else { continue };
        let mut cap: v4l2_capability = zeroed();
        ioctl(f.as_raw_fd(), v4l::v4l2::vidioc::VIDIOC_QUERYCAP, &mut cap)?;
        let bus = String::from_utf8_lossy(&cap.bus_info)
            .trim_end_matches('\0')
            .to_owned();
        let caps = cap.device_caps;
        multi |= caps & (V4L2_CAP_VIDEO_CAPTURE_MPLANE | V4L2_CAP_VIDEO_OUTPUT_MPLANE) != 0;
        match (
            bus.as_str(),
            caps & (V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE) != 0,
            caps & (V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_VIDEO_OUTPUT_MPLANE) != 0,
        ) {
            ("platform:vivid-000", true, _) => webcam = Some(path),
            ("platform:vivid-001", true, _) => hdmi_in = Some(path),
            ("platform:vivid-001", _, true) => hdmi_out = Some(path),
            _ => {}
        }
    }
    Ok(Nodes {
        webcam: webcam.ok_or("no vivid webcam node")?,
        hdmi_in: hdmi_in.ok_or("no vivid HDMI capture node")?,
        hdmi_out: hdmi_out.ok_or("no vivid HDMI output node")?,
        multi,
    })
}

fn camera(device: &str, formats: &[&str]) -> CameraConfig {
    CameraConfig {
        source: CameraSource::V4l,
        device: device.into(),
        formats: formats.iter().map(|s| s.to_string()).collect(),
        ..CameraConfig::default()
    }
}

fn settings() -> Settings {
    Settings {
        // Software emulation is slow: generous, since this is not a speed test.
        timeout: Duration::from_secs(60),
        device_brand: "vivid".into(),
        ..Settings::default()
    }
}

fn webcam(device: &str) -> Res<()> {
    let mut source =
        V4l2Source::open(&camera(device, &["MJPG", "YUYV"])).map_err(|e| e.to_string())?;
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < 10 {
        match source.next_frame(deadline).map_err(|e| e.to_string())? {
            Next::Frame(f) => {
                if f.format != facecapture::camera::PixelFormat::Yuyv {
                    return Err(format!(
                        "expected YUYV (vivid has no MJPG), got {:?}",
                        f.format
                    ));
                }
                let gray = f.to_gray().map_err(|e| e.to_string())?;
                if gray.dimensions() != (640, 480) {
                    return Err(format!("frame is {:?}", gray.dimensions()));
                }
                got += 1;
            }
            Next::Bad(e) => println!("VIVID-CHECK webcam bad frame: {e}"),
            Next::Deadline => return Err("webcam: no frames".into()),
        }
    }
    println!("VIVID-CHECK webcam ok: 10 YUYV 640x480 frames (MJPG not offered, YUYV chosen)");

    // A second user of a streaming camera gets EBUSY: CameraUnavailable, "busy".
    match V4l2Source::open(&camera(device, &["YUYV"])) {
        Err(CameraError::Unavailable { reason, .. }) if reason.contains("busy") => {
            println!("VIVID-CHECK busy ok: {reason}");
        }
        Err(e) => return Err(format!("second open: expected busy, got {e}")),
        Ok(_) => return Err("second open of a streaming camera succeeded".into()),
    }

    // A buffer the driver flags as corrupt is handed on as a bad frame; the stream goes on.
    set_control(
        device,
        "Inject V4L2_BUF_FLAG_ERROR",
        v4l::control::Value::None,
    )?;
    let (mut bad, mut good) = (0, 0);
    while good < 10 {
        match source.next_frame(deadline).map_err(|e| e.to_string())? {
            Next::Frame(_) => good += 1,
            Next::Bad(facecapture::camera::FrameError::Flagged) => bad += 1,
            Next::Bad(e) => return Err(format!("unexpected bad frame: {e}")),
            Next::Deadline => return Err("webcam: no frames after the error".into()),
        }
    }
    if bad == 0 {
        return Err("the injected buffer error was not seen".into());
    }
    println!("VIVID-CHECK flagged ok: {bad} flagged frame(s) skipped, {good} good frames after");
    Ok(())
}

/// The mean gray level of the lower half of a frame from `device` in `format`
/// (vivid's colour bars; its text overlay sits at the top).
fn picture(device: &str, format: &str) -> Res<(facecapture::camera::PixelFormat, f64)> {
    let mut source = V4l2Source::open(&camera(device, &[format])).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = 0;
    let mut level = 0.0;
    let mut kind = None;
    while got < 3 {
        match source.next_frame(deadline).map_err(|e| e.to_string())? {
            Next::Frame(f) => {
                let gray = f.to_gray().map_err(|e| format!("{format}: {e}"))?;
                let rgb = f.to_rgb().map_err(|e| format!("{format}: {e}"))?;
                if gray.dimensions() != (640, 480) || rgb.dimensions() != (640, 480) {
                    return Err(format!("{format}: frame is {:?}", gray.dimensions()));
                }
                let lower = &gray.as_raw()[640 * 240..];
                level = lower.iter().map(|&v| f64::from(v)).sum::<f64>() / lower.len() as f64;
                kind = Some(f.format);
                got += 1;
            }
            Next::Bad(e) => return Err(format!("{format}: bad frame: {e}")),
            Next::Deadline => return Err(format!("{format}: no frames")),
        }
    }
    Ok((kind.ok_or("no frame")?, level))
}

/// Every other format vivid offers that the camera code converts: the same
/// picture as YUYV's, within 8 gray levels (the gray formats may use the full
/// range where YUV uses 16-235; a format read with the wrong layout, chroma
/// taken for luma, is 25 or more levels off on colour bars).
fn formats(device: &str, multi: bool) -> Res<()> {
    let (_, reference) = picture(device, "YUYV")?;
    let mut names = vec!["UYVY", "NV12", "NV21", "NV16", "GREY", "Y10", "Y16"];
    if multi {
        names.extend(["NV12M", "NV21M", "NV16M"]);
    }
    let mut seen = Vec::new();
    for name in names {
        let (format, level) = picture(device, name)?;
        let want = facecapture::camera::v4l2::format_named(name, multi)
            .map(|(f, _)| f)
            .ok_or_else(|| format!("{name}: unknown"))?;
        if format != want {
            return Err(format!("{name}: frames came as {format:?}"));
        }
        if (level - reference).abs() > 8.0 {
            return Err(format!(
                "{name}: the picture's lower half averages {level:.1}, YUYV's {reference:.1}"
            ));
        }
        seen.push(format!("{name} {level:.1}"));
    }
    println!(
        "VIVID-CHECK formats ok: YUYV {reference:.1}, {}",
        seen.join(", ")
    );
    Ok(())
}

/// Sets a vivid control by name.
fn set_control(device: &str, name: &str, value: v4l::control::Value) -> Res<()> {
    let dev = v4l::Device::with_path(device).map_err(|e| format!("{device}: {e}"))?;
    let controls = dev.query_controls().map_err(|e| e.to_string())?;
    let c = controls
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| format!("{device}: no control {name:?}"))?;
    dev.set_control(v4l::Control { id: c.id, value })
        .map_err(|e| format!("{device}: set {name}: {e}"))
}

/// 640x480 progressive DV timings on an HDMI node.
fn set_640x480(fd: i32) -> Res<()> {
    for index in 0..64 {
        let mut e: v4l2_enum_dv_timings = zeroed();
        e.index = index;
        ioctl(fd, iowr::<v4l2_enum_dv_timings>(98), &mut e)?;
        // SAFETY: `bt` is the member for V4L2_DV_BT_656_1120 timings, the only kind.
        let bt = unsafe { e.timings.__bindgen_anon_1.bt };
        if bt.width == 640 && bt.height == 480 && bt.interlaced == 0 {
            let mut t = e.timings;
            return ioctl(fd, iowr::<v4l2_dv_timings>(87), &mut t);
        }
    }
    Err("no 640x480 DV timings".into())
}

/// Writes the face frame to the output node until `stop`, through the
/// single- or the multi-planar output API.
fn feed(
    device: String,
    multi: bool,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<Res<()>>,
) {
    let kind = if multi {
        v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE
    } else {
        v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT
    };
    // A buffer descriptor; a multi-planar one points at `plane`.
    let descriptor = |index: u32, plane: &mut v4l2_plane| {
        let mut buf: v4l2_buffer = zeroed();
        buf.index = index;
        buf.type_ = kind;
        buf.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        if multi {
            buf.m.planes = plane;
            buf.length = 1;
        }
        buf
    };
    let result = (|| -> Res<(std::fs::File, Vec<Mapping>)> {
        let f = open(&device)?;
        let fd = f.as_raw_fd();
        let mut fmt: v4l2_format = zeroed();
        fmt.type_ = kind;
        let yuyv_code = facecapture::camera::PixelFormat::Yuyv.fourcc();
        if multi {
            fmt.fmt.pix_mp.width = 640;
            fmt.fmt.pix_mp.height = 480;
            fmt.fmt.pix_mp.pixelformat = yuyv_code;
            fmt.fmt.pix_mp.field = v4l2_field_V4L2_FIELD_NONE;
            fmt.fmt.pix_mp.num_planes = 1;
        } else {
            fmt.fmt.pix.width = 640;
            fmt.fmt.pix.height = 480;
            fmt.fmt.pix.pixelformat = yuyv_code;
            fmt.fmt.pix.field = v4l2_field_V4L2_FIELD_NONE;
        }
        ioctl(fd, v4l::v4l2::vidioc::VIDIOC_S_FMT, &mut fmt)?;
        let rgb = image::load_from_memory(FACE)
            .map_err(|e| e.to_string())?
            .to_rgb8();
        let yuyv = rgb_to_yuyv(&rgb);
        let mut req: v4l2_requestbuffers = zeroed();
        req.count = 4;
        req.type_ = kind;
        req.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        ioctl(fd, v4l::v4l2::vidioc::VIDIOC_REQBUFS, &mut req)?;
        let mut maps = Vec::new();
        for index in 0..req.count {
            let mut plane: v4l2_plane = zeroed();
            let mut buf = descriptor(index, &mut plane);
            ioctl(fd, v4l::v4l2::vidioc::VIDIOC_QUERYBUF, &mut buf)?;
            // SAFETY: `offset` / `mem_offset` are the members for MMAP buffers.
            let (offset, len) = if multi {
                (unsafe { plane.m.mem_offset }, plane.length as usize)
            } else {
                (unsafe { buf.m.offset }, buf.length as usize)
            };
            let mut map =
                Mapping::new(fd, offset, len).map_err(|e| format!("mmap output buffer: {e}"))?;
            let n = yuyv.len().min(map.len());
            map.bytes_mut()[..n].copy_from_slice(&yuyv[..n]);
            if multi {
                plane.bytesused = n as u32;
                buf.m.planes = &mut plane;
            } else {
                buf.bytesused = n as u32;
            }
            ioctl(fd, v4l::v4l2::vidioc::VIDIOC_QBUF, &mut buf)?;
            maps.push(map);
        }
        let mut kind = kind;
        ioctl(fd, v4l::v4l2::vidioc::VIDIOC_STREAMON, &mut kind)?;
        Ok((f, maps))
    })();
    let (f, _maps) = match result {
        Ok(v) => {
            let _ = ready.send(Ok(()));
            v
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let fd = f.as_raw_fd();
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 200) } <= 0 {
            continue;
        }
        let mut plane: v4l2_plane = zeroed();
        let mut buf = descriptor(0, &mut plane);
        if ioctl(fd, v4l::v4l2::vidioc::VIDIOC_DQBUF, &mut buf).is_ok() {
            // The buffer still holds the face: queue it again as it is.
            if multi {
                buf.m.planes = &mut plane;
            }
            let _ = ioctl(fd, v4l::v4l2::vidioc::VIDIOC_QBUF, &mut buf);
        }
    }
    let mut kind = kind;
    let _ = ioctl(fd, v4l::v4l2::vidioc::VIDIOC_STREAMOFF, &mut kind);
}

fn loopback(hdmi_in: &str, hdmi_out: &str, multi: bool) -> Res<()> {
    for node in [hdmi_in, hdmi_out] {
        let f = open(node)?;
        set_640x480(f.as_raw_fd()).map_err(|e| format!("{node}: {e}"))?;
    }
    set_control(hdmi_in, "Loop Video", v4l::control::Value::Boolean(true))?;
    // vivid writes status text over the top of captured frames (over the face):
    // "OSD Text Mode" 2 is none.
    set_control(hdmi_in, "OSD Text Mode", v4l::control::Value::Integer(2))?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let feeder = {
        let (stop, out) = (stop.clone(), hdmi_out.to_owned());
        std::thread::spawn(move || feed(out, multi, stop, tx))
    };
    rx.recv().map_err(|e| e.to_string())??;
    let result = (|| -> Res<()> {
        let mut source =
            V4l2Source::open(&camera(hdmi_in, &["YUYV"])).map_err(|e| e.to_string())?;
        let rgb = image::load_from_memory(FACE)
            .map_err(|e| e.to_string())?
            .to_rgb8();
        let want = rgb_to_yuyv(&rgb);
        // The loop is byte-exact once the output streams.
        let mut exact = false;
        for _ in 0..5 {
            if let Next::Frame(f) = source
                .next_frame(Instant::now() + Duration::from_secs(5))
                .map_err(|e| e.to_string())?
            {
                exact |= f.data[..] == want[..];
            }
        }
        if !exact {
            return Err("the HDMI capture does not show what was written to the output".into());
        }
        println!("VIVID-CHECK loopback frames are byte-exact copies of the face written");
        let mut detector = Detector::embedded().map_err(|e| e.to_string())?;
        let mut feedback = Vec::new();
        let package = capture::capture_face(
            &mut source,
            &mut detector,
            &settings(),
            "vivid-user",
            &mut |f| feedback.push(f.as_str()),
            &AtomicBool::new(false),
        )
        .map_err(|e| format!("capture through loopback: {e} (feedback {feedback:?})"))?;
        let frames = &package.video.workflow_data.frames;
        for f in frames {
            let jpeg = facecapture::crypto::unb64(&f.data).map_err(|e| e.to_string())?;
            let img = image::load_from_memory(&jpeg)
                .map_err(|e| e.to_string())?
                .to_luma8();
            let faces = detector.detect(&img, 100);
            if faces.len() != 1 {
                return Err(format!("packaged frame holds {} faces", faces.len()));
            }
        }
        println!(
            "VIVID-CHECK loopback ok: compliant package of {} frames, face found in each (feedback {feedback:?})",
            frames.len()
        );
        // The installer's check on the same stream: the face, framed well.
        let face = check(&mut source, &mut detector)?;
        if face.face_share < 0.5 || !face.advice.iter().any(|a| a.starts_with("framing is good")) {
            return Err(format!("camera check of the face: {face:?}"));
        }
        println!(
            "VIVID-CHECK camera-check ok: loopback {} {}x{} {} frames, a face in {:.0}%, advice {:?}",
            face.format,
            face.width,
            face.height,
            face.frames,
            face.face_share * 100.0,
            face.advice
        );
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let _ = feeder.join();
    result
}

/// The camera check on `source` for 2 s: what the driver granted and the report.
fn check(
    source: &mut V4l2Source,
    detector: &mut Detector,
) -> Res<facecapture::capture::check::CameraReport> {
    let r = capture::check::camera_check(
        source,
        detector,
        &settings(),
        Duration::from_secs(2),
        false,
        &mut |_| {},
        &AtomicBool::new(false),
    )
    .map_err(|e| format!("camera check: {e}"))?
    .report;
    if r.driver != "vivid"
        || r.format != "YUYV"
        || (r.width, r.height) != (640, 480)
        || r.frames == 0
    {
        return Err(format!("camera check's report: {r:?}"));
    }
    Ok(r)
}

/// Operations timed from start to first frame, per mode.
const FIRST_FRAME_RUNS: usize = 7;

/// The first good frame of `source`.
fn first_good(source: &mut dyn FrameSource) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match source.next_frame(deadline).map_err(|e| e.to_string())? {
            Next::Frame(_) => return Ok(()),
            Next::Bad(e) => println!("VIVID-CHECK first-frame bad frame: {e}"),
            Next::Deadline => return Err("first-frame: no frame in 30 s".into()),
        }
    }
}

/// Median, least and most of some durations, in ms.
fn spread(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.1} ms ({:.1}-{:.1})",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1])
    )
}

/// Time to first frame, cold (the camera opened by the operation: open,
/// negotiate, map, stream on, first frame) and kept open (`camera.keep_open`: the
/// frames queued while idle discarded, then the next one). Figures, not a speed
/// test; what is checked is that a kept camera had stale frames and dropped them.
fn first_frame(device: &str) -> Res<()> {
    let config = camera(device, &["YUYV"]);
    let mut cold = Vec::new();
    for _ in 0..FIRST_FRAME_RUNS {
        let started = Instant::now();
        let mut cam = Camera::new(config.clone());
        first_good(cam.acquire().map_err(|e| e.to_string())?)?;
        cold.push(started.elapsed());
        cam.release(false);
        if cam.is_open() {
            return Err("first-frame: the camera stayed open without keep_open".into());
        }
    }
    let mut source = V4l2Source::open(&config).map_err(|e| e.to_string())?;
    first_good(&mut source)?;
    let (mut warm, mut stale) = (Vec::new(), 0);
    for _ in 0..FIRST_FRAME_RUNS {
        // The door idle between two people: long enough for the driver to fill
        // its queue with frames nobody reads.
        std::thread::sleep(Duration::from_millis(400));
        let started = Instant::now();
        stale += source.discard_pending().map_err(|e| e.to_string())?;
        first_good(&mut source)?;
        warm.push(started.elapsed());
    }
    if stale == 0 {
        return Err("first-frame: a camera idle for 400 ms had queued no frame".into());
    }
    println!(
        "VIVID-CHECK first-frame ok: cold open {}, kept open {}; {stale} stale frames discarded over {FIRST_FRAME_RUNS} operations",
        spread(&mut cold),
        spread(&mut warm)
    );
    Ok(())
}

/// The installer's check on the webcam's test pattern: no face, and it says so.
fn webcam_check(device: &str) -> Res<()> {
    let mut source = V4l2Source::open(&camera(device, &["YUYV"])).map_err(|e| e.to_string())?;
    let mut detector = Detector::embedded().map_err(|e| e.to_string())?;
    let r = check(&mut source, &mut detector)?;
    if r.fps_granted <= 0.0
        || r.face_share != 0.0
        || !r.advice.iter().any(|a| a.starts_with("no face in"))
    {
        return Err(format!("camera check of the test pattern: {r:?}"));
    }
    println!(
        "VIVID-CHECK camera-check webcam: {} {} {}x{} at {:.0} fps granted, {:.1} measured, {} dropped, advice {:?}",
        r.driver,
        r.format,
        r.width,
        r.height,
        r.fps_granted,
        r.fps_measured,
        r.dropped_frames,
        r.advice
    );
    Ok(())
}

fn disconnect(webcam: &str) -> Res<()> {
    let mut cam = Camera::new(camera(webcam, &["YUYV"]));
    let device = webcam.to_owned();
    let unplug = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        set_control(&device, "Disconnect", v4l::control::Value::None)
    });
    let source = cam.acquire().map_err(|e| e.to_string())?;
    let mut s = settings();
    s.timeout = Duration::from_secs(30);
    let outcome = capture::scan_qr(
        source,
        &s,
        &facecapture::crypto::qr::QrKeys::new(
            rsa::PrivateKey::new(&mut getrandom::SysRng, 1024)
                .map_err(|e| e.to_string())?
                .to_public_key(),
            [0; 32],
        ),
        &[],
        &AtomicBool::new(false),
    );
    unplug.join().map_err(|_| "unplug thread")??;
    match outcome {
        Err(CaptureError::Camera(CameraError::Unavailable { reason, .. })) => {
            println!("VIVID-CHECK disconnect ok: CameraUnavailable ({reason})");
        }
        other => return Err(format!("expected CameraUnavailable, got {other:?}")),
    }
    cam.release(true);
    // vivid re-registers its nodes when the last file handle closes.
    let t = Instant::now();
    let source = loop {
        match cam.acquire() {
            Ok(_) => break cam.acquire().map_err(|e| e.to_string())?,
            Err(e) if t.elapsed() < Duration::from_secs(10) => {
                println!("VIVID-CHECK waiting for the camera: {e}");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(format!("camera did not come back: {e}")),
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = 0;
    while got < 5 {
        match source.next_frame(deadline).map_err(|e| e.to_string())? {
            Next::Frame(_) => got += 1,
            Next::Bad(_) => {}
            Next::Deadline => return Err("no frames after reconnect".into()),
        }
    }
    println!("VIVID-CHECK reconnect ok: the next operation streams again");
    cam.release(false);
    Ok(())
}
