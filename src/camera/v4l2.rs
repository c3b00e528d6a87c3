//! The `v4l` frame source: a V4L2 capture device with mmap streaming. The format
//! is the first of `camera.formats` the device offers; size and frame rate are
//! asked for and what the driver granted is logged. Device errors (missing node,
//! EBUSY, ENODEV after an unplug) become `CameraError::Unavailable`; frames the
//! driver flags or delivers short are handed on as bad frames. The v4l crate is
//! used for its kernel structures and ioctl numbers only: its stream types panic
//! in `Drop` when the device has gone, which a daemon cannot afford.

use super::frame::{FrameError, PixelFormat, RawFrame};
use super::{CameraError, FrameSource, Next, files::now_ms};
use crate::config::CameraConfig;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;
use v4l::v4l_sys::*;
use v4l::v4l2::vidioc;
use zeroize::Zeroizing;

/// Buffers in the driver's queue.
const BUFFERS: u32 = 4;

/// One ioctl, retried on EINTR.
///
/// # Safety
/// `arg` must be the structure `request` expects.
unsafe fn xioctl<T>(fd: i32, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
    loop {
        // SAFETY: the caller passes the structure the request expects.
        match unsafe { v4l::v4l2::ioctl(fd, request, arg as *mut T as *mut std::ffi::c_void) } {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

fn zeroed<T>() -> T {
    // SAFETY: only used for the kernel's plain-old-data V4L2 structures, for which
    // all-zero bytes are a valid (and the documented initial) value.
    unsafe { std::mem::zeroed() }
}

/// Why a node that is not a single-planar streaming capture device is refused.
fn capture_refusal(caps: u32) -> &'static str {
    if caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
        "offers only the multi-planar capture API (V4L2_CAP_VIDEO_CAPTURE_MPLANE, as \
         MIPI CSI receivers do), which this version does not support yet: use a node with \
         single-planar capture (v4l2-ctl --list-devices; --all shows \"Video Capture\")"
    } else if caps & V4L2_CAP_VIDEO_CAPTURE == 0 {
        "not a video capture device (v4l2-ctl --list-devices lists the capture nodes)"
    } else {
        "does not support streaming I/O"
    }
}

fn errno_reason(what: &str, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such device".into(),
        Some(libc::ENODEV) | Some(libc::ENXIO) => "device gone (unplugged?)".into(),
        Some(libc::EBUSY) => "busy: another program is using the camera".into(),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            "permission denied (is the service in the video group?)".into()
        }
        // A UVC camera that cannot reserve isochronous USB bandwidth refuses
        // VIDIOC_STREAMON with ENOSPC.
        Some(libc::ENOSPC) => format!(
            "{what}: not enough USB bandwidth for this format: lower camera.width and \
             camera.height or camera.fps, put MJPG first in camera.formats, or plug the \
             camera into a USB port of its own"
        ),
        _ => format!("{what}: {e}"),
    }
}

struct Mapping {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

pub struct V4l2Source {
    name: String,
    file: File,
    buffers: Vec<Mapping>,
    streaming: bool,
    format: PixelFormat,
    width: u32,
    height: u32,
    stride: u32,
    image_size: u32,
}

// SAFETY: the mappings are process-wide shared memory owned by this value alone;
// nothing else holds the pointers.
unsafe impl Send for V4l2Source {}

impl V4l2Source {
    pub fn open(config: &CameraConfig) -> Result<Self, CameraError> {
        let name = config.device.clone();
        let fail = |what: &str, e: io::Error| CameraError::Unavailable {
            device: config.device.clone(),
            reason: errno_reason(what, &e),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&config.device)
            .map_err(|e| fail("open", e))?;
        let fd = file.as_raw_fd();

        let mut cap: v4l2_capability = zeroed();
        // SAFETY: QUERYCAP takes a v4l2_capability.
        unsafe { xioctl(fd, vidioc::VIDIOC_QUERYCAP, &mut cap) }
            .map_err(|e| fail("not a V4L2 device", e))?;
        let caps = if cap.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
            cap.device_caps
        } else {
            cap.capabilities
        };
        if caps & V4L2_CAP_VIDEO_CAPTURE == 0 || caps & V4L2_CAP_STREAMING == 0 {
            return Err(CameraError::Unavailable {
                device: name,
                reason: capture_refusal(caps).into(),
            });
        }

        let offered = offered_formats(fd);
        let Some(wanted) = config
            .formats
            .iter()
            .filter_map(|n| PixelFormat::from_name(n))
            .find(|f| offered.contains(&f.fourcc()))
        else {
            let names: Vec<String> = offered.iter().map(|c| fourcc_name(*c)).collect();
            return Err(CameraError::Unavailable {
                device: name,
                reason: format!(
                    "offers none of camera.formats {:?} (it offers {names:?})",
                    config.formats
                ),
            });
        };

        let mut fmt: v4l2_format = zeroed();
        fmt.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // `pix` is the union member for VIDEO_CAPTURE.
        fmt.fmt.pix.width = config.width;
        fmt.fmt.pix.height = config.height;
        fmt.fmt.pix.pixelformat = wanted.fourcc();
        fmt.fmt.pix.field = v4l2_field_V4L2_FIELD_NONE;
        // SAFETY: S_FMT takes a v4l2_format.
        unsafe { xioctl(fd, vidioc::VIDIOC_S_FMT, &mut fmt) }.map_err(|e| fail("set format", e))?;
        // SAFETY: the driver filled `pix` for VIDEO_CAPTURE.
        let pix = unsafe { fmt.fmt.pix };
        let Some(format) = PixelFormat::from_fourcc(pix.pixelformat) else {
            return Err(CameraError::Unavailable {
                device: name,
                reason: format!(
                    "asked for {}, the driver gave {}",
                    wanted.name(),
                    fourcc_name(pix.pixelformat)
                ),
            });
        };
        if pix.width == 0 || pix.height == 0 || pix.width > 8192 || pix.height > 8192 {
            return Err(CameraError::Unavailable {
                device: name,
                reason: format!(
                    "the driver gave an unusable size {}x{}",
                    pix.width, pix.height
                ),
            });
        }

        let mut parm: v4l2_streamparm = zeroed();
        parm.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // `capture` is the union member for VIDEO_CAPTURE.
        parm.parm.capture.timeperframe.numerator = 1;
        parm.parm.capture.timeperframe.denominator = config.fps;
        // Not every driver can set the rate (HDMI capture follows its source): log, go on.
        // SAFETY: S_PARM takes a v4l2_streamparm.
        let fps = match unsafe { xioctl(fd, vidioc::VIDIOC_S_PARM, &mut parm) } {
            // SAFETY: the driver filled `capture`.
            Ok(()) => unsafe {
                let t = parm.parm.capture.timeperframe;
                if t.numerator > 0 {
                    f64::from(t.denominator) / f64::from(t.numerator)
                } else {
                    0.0
                }
            },
            Err(_) => 0.0,
        };
        tracing::info!(
            device = name.as_str(),
            driver = cstr(&cap.driver).as_str(),
            card = cstr(&cap.card).as_str(),
            format = format.name(),
            width = pix.width,
            height = pix.height,
            fps,
            asked_width = config.width,
            asked_height = config.height,
            asked_fps = config.fps,
            "camera format negotiated"
        );

        let mut source = Self {
            name,
            file,
            buffers: Vec::new(),
            streaming: false,
            format,
            width: pix.width,
            height: pix.height,
            stride: pix.bytesperline,
            image_size: pix.sizeimage,
        };
        source.start().map_err(|e| fail("start streaming", e))?;
        Ok(source)
    }

    fn start(&mut self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let mut req: v4l2_requestbuffers = zeroed();
        req.count = BUFFERS;
        req.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        req.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: REQBUFS takes a v4l2_requestbuffers.
        unsafe { xioctl(fd, vidioc::VIDIOC_REQBUFS, &mut req) }?;
        if req.count == 0 {
            return Err(io::Error::other("the driver granted no buffers"));
        }
        for index in 0..req.count {
            let mut buf = self.buffer(index);
            // SAFETY: QUERYBUF takes a v4l2_buffer.
            unsafe { xioctl(fd, vidioc::VIDIOC_QUERYBUF, &mut buf) }?;
            let len = buf.length as usize;
            // SAFETY: mapping the driver's buffer at the offset it gave; checked below.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_SHARED,
                    fd,
                    buf.m.offset as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            self.buffers.push(Mapping { ptr, len });
        }
        for index in 0..req.count {
            let mut buf = self.buffer(index);
            // SAFETY: QBUF takes a v4l2_buffer.
            unsafe { xioctl(fd, vidioc::VIDIOC_QBUF, &mut buf) }?;
        }
        let mut kind = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // SAFETY: STREAMON takes the buffer type.
        unsafe { xioctl(fd, vidioc::VIDIOC_STREAMON, &mut kind) }?;
        self.streaming = true;
        Ok(())
    }

    fn buffer(&self, index: u32) -> v4l2_buffer {
        let mut buf: v4l2_buffer = zeroed();
        buf.index = index;
        buf.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        buf.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        buf
    }

    fn unavailable(&self, e: &io::Error) -> CameraError {
        CameraError::Unavailable {
            device: self.name.clone(),
            reason: errno_reason("capture", e),
        }
    }

    /// Copies a dequeued buffer out and gives it back to the driver.
    fn take(&mut self, buf: &mut v4l2_buffer) -> Result<Next, CameraError> {
        let fd = self.file.as_raw_fd();
        let index = buf.index as usize;
        let result = match self.buffers.get(index) {
            None => Next::Bad(FrameError::Empty),
            Some(_) if buf.flags & V4L2_BUF_FLAG_ERROR != 0 => Next::Bad(FrameError::Flagged),
            Some(map) => {
                let used = (buf.bytesused as usize).min(map.len);
                // SAFETY: the mapping is `map.len` bytes long and the driver has
                // handed this buffer to us until it is queued again below.
                let bytes = unsafe { std::slice::from_raw_parts(map.ptr as *const u8, used) };
                let frame = RawFrame {
                    format: self.format,
                    width: self.width,
                    height: self.height,
                    stride: self.stride,
                    data: Zeroizing::new(bytes.to_vec()),
                    captured_ms: now_ms(),
                };
                if self.format != PixelFormat::Mjpg
                    && self.image_size > 0
                    && used < self.image_size as usize
                {
                    Next::Bad(FrameError::Short {
                        format: self.format.name(),
                        width: self.width,
                        height: self.height,
                        got: used,
                        want: self.image_size as usize,
                    })
                } else {
                    Next::Frame(frame)
                }
            }
        };
        // SAFETY: QBUF takes a v4l2_buffer; this one came from DQBUF.
        unsafe { xioctl(fd, vidioc::VIDIOC_QBUF, buf) }.map_err(|e| self.unavailable(&e))?;
        Ok(result)
    }
}

impl FrameSource for V4l2Source {
    fn name(&self) -> &str {
        &self.name
    }

    fn next_frame(&mut self, deadline: Instant) -> Result<Next, CameraError> {
        let fd = self.file.as_raw_fd();
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = wait.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(self.unavailable(&e));
            }
            if n == 0 {
                return Ok(Next::Deadline);
            }
            let mut buf = self.buffer(0);
            // SAFETY: DQBUF takes a v4l2_buffer.
            match unsafe { xioctl(fd, vidioc::VIDIOC_DQBUF, &mut buf) } {
                Ok(()) => return self.take(&mut buf),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                        return Err(self.unavailable(&io::Error::from_raw_os_error(libc::ENODEV)));
                    }
                    if Instant::now() >= deadline {
                        return Ok(Next::Deadline);
                    }
                }
                Err(e) => return Err(self.unavailable(&e)),
            }
        }
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        let fd = self.file.as_raw_fd();
        if self.streaming {
            let mut kind = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
            // SAFETY: STREAMOFF takes the buffer type. A gone device fails: nothing to do.
            let _ = unsafe { xioctl(fd, vidioc::VIDIOC_STREAMOFF, &mut kind) };
        }
        for map in self.buffers.drain(..) {
            // SAFETY: unmapping what `start` mapped, once.
            unsafe { libc::munmap(map.ptr, map.len) };
        }
        // The file closes after this; freeing the buffers is implied by the close.
    }
}

/// The fourccs the device offers for capture.
fn offered_formats(fd: i32) -> Vec<u32> {
    let mut out = Vec::new();
    for index in 0..256 {
        let mut desc: v4l2_fmtdesc = zeroed();
        desc.index = index;
        desc.type_ = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // SAFETY: ENUM_FMT takes a v4l2_fmtdesc; EINVAL ends the list.
        if unsafe { xioctl(fd, vidioc::VIDIOC_ENUM_FMT, &mut desc) }.is_err() {
            break;
        }
        out.push(desc.pixelformat);
    }
    out
}

fn fourcc_name(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

fn cstr(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(device: &str) -> CameraConfig {
        CameraConfig {
            device: device.into(),
            ..CameraConfig::default()
        }
    }

    #[test]
    fn a_node_that_cannot_capture_says_why() {
        assert!(
            capture_refusal(V4L2_CAP_VIDEO_CAPTURE_MPLANE | V4L2_CAP_STREAMING)
                .contains("multi-planar")
        );
        assert!(capture_refusal(V4L2_CAP_VIDEO_OUTPUT).contains("not a video capture device"));
        assert!(capture_refusal(V4L2_CAP_VIDEO_CAPTURE).contains("streaming"));
    }

    #[test]
    fn errors_name_the_cause_and_what_to_do() {
        let reason = |errno| errno_reason("start streaming", &io::Error::from_raw_os_error(errno));
        let r = reason(libc::ENOSPC);
        assert!(
            r.starts_with("start streaming: not enough USB bandwidth") && r.contains("MJPG"),
            "{r}"
        );
        assert!(reason(libc::EBUSY).contains("another program"));
        assert!(reason(libc::ENODEV).contains("unplugged"));
        assert!(reason(libc::EACCES).contains("video group"));
        assert!(reason(libc::EIO).starts_with("start streaming: "));
    }

    /// bindgen must parse the target's own headers: a cross build that saw the
    /// host's would give 32-bit ARM 64-bit layouts, and every buffer ioctl would
    /// fail. The figures are the kernel UAPI's (videodev2.h; 32-bit time_t on armhf).
    #[test]
    fn v4l2_structs_have_the_target_abi() {
        let (buffer, format, qbuf, s_fmt) = if cfg!(target_pointer_width = "64") {
            (88, 208, 0xc058_560f, 0xc0d0_5605)
        } else {
            (68, 204, 0xc044_560f, 0xc0cc_5605)
        };
        assert_eq!(std::mem::size_of::<v4l2_buffer>(), buffer);
        assert_eq!(std::mem::size_of::<v4l2_format>(), format);
        assert_eq!(vidioc::VIDIOC_QBUF, qbuf);
        assert_eq!(vidioc::VIDIOC_S_FMT, s_fmt);
    }

    #[test]
    fn a_missing_device_is_unavailable_and_named() {
        let e = V4l2Source::open(&config("/dev/video-does-not-exist"))
            .err()
            .expect("error");
        let s = e.to_string();
        assert!(
            s.contains("/dev/video-does-not-exist") && s.contains("no such device"),
            "{s}"
        );
    }

    #[test]
    fn a_file_that_is_no_camera_is_unavailable() {
        let e = V4l2Source::open(&config("/dev/null")).err().expect("error");
        assert!(e.to_string().contains("/dev/null"), "{e}");
        assert!(matches!(e, CameraError::Unavailable { .. }));
    }

    #[test]
    fn fourcc_names_are_printable() {
        assert_eq!(fourcc_name(PixelFormat::Yuyv.fourcc()), "YUYV");
        assert_eq!(fourcc_name(0), "????");
    }
}
