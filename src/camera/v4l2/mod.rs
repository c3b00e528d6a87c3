//! The `v4l` frame source: a V4L2 capture device with mmap streaming, through the
//! single-planar API (USB webcams) or the multi-planar one (the capture nodes of
//! MIPI CSI receivers: Rockchip, i.MX8 ISI), whichever the node offers; a frame
//! in two planes (NV12M, NV21M, NV16M) is joined into the one-buffer layout of its
//! single-plane format. The format is the first of `camera.formats` the device
//! offers; size and frame rate are asked for and what the driver granted is
//! logged, with the API. Device errors (missing node,
//! EBUSY, ENODEV after an unplug) become `CameraError::Unavailable`; frames the
//! driver flags or delivers short are handed on as bad frames. The v4l crate is
//! used for its kernel structures and ioctl numbers only: its stream types panic
//! in `Drop` when the device has gone, which a daemon cannot afford.

mod format;
pub mod sys;

pub use format::format_named;

use super::frame::{FrameError, PixelFormat, RawFrame};
use super::{CameraError, FrameSource, Next};
use crate::clock::unix_ms as now_ms;
use crate::config::CameraConfig;
use format::{Api, Plane, fourcc_name, join_planes};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Instant;
use sys::{Mapping, xioctl, zeroed};
use v4l::v4l_sys::*;
use v4l::v4l2::vidioc;
use zeroize::Zeroizing;

/// Buffers in the driver's queue.
const BUFFERS: u32 = 4;

fn errno_reason(what: &str, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) => "no such device".into(),
        Some(libc::ENODEV) | Some(libc::ENXIO) => "device gone (unplugged?)".into(),
        Some(libc::EBUSY) => "busy: another program is using the camera".into(),
        Some(libc::EACCES) => {
            "permission denied: the service's user may not open the node (is it in the video \
             group? ls -l the node)"
                .into()
        }
        // The device cgroup answers EPERM: systemd resolves the unit's
        // DeviceAllow=char-video4linux when the service starts, so a V4L2 core
        // (videodev) loaded after that is not allowed until it starts again.
        Some(libc::EPERM) => {
            "refused by the service's device policy: the V4L2 driver loaded after the service \
             started (DeviceAllow=char-video4linux is resolved at start); systemctl restart \
             facecaptured"
                .into()
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

/// A V4L2 capture node streaming into mmap'd buffers, single- or multi-planar as the
/// node offers.
pub struct V4l2Source {
    name: String,
    file: File,
    api: Api,
    /// Per buffer, its planes' mappings (one with the single-planar API).
    buffers: Vec<Vec<Mapping>>,
    streaming: bool,
    format: PixelFormat,
    width: u32,
    height: u32,
    /// The planes as the driver set them (one with the single-planar API).
    planes: Vec<Plane>,
    info: super::SourceInfo,
    /// The last buffer's sequence number, and the frames dropped before it.
    sequence: Option<u32>,
    dropped: u64,
}

/// The plane array a multi-planar `v4l2_buffer` points at.
type PlaneArray = [v4l2_plane; VIDEO_MAX_PLANES as usize];

impl V4l2Source {
    /// Opens `camera.device`, negotiates the first of `camera.formats` the node offers
    /// at the configured size and rate, maps its buffers and starts streaming; errors
    /// name the device and what to do.
    pub fn open(config: &CameraConfig) -> Result<Self, CameraError> {
        let unavailable = |reason: String| CameraError::Unavailable {
            device: config.device.clone(),
            reason,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&config.device)
            .map_err(|e| unavailable(errno_reason("open", &e)))?;
        let fd = file.as_raw_fd();
        let (cap, api) = format::query(fd).map_err(unavailable)?;
        let (wanted, wanted_code) =
            format::choose(fd, api, &config.formats).map_err(unavailable)?;
        let granted = format::set(fd, api, config, (wanted, wanted_code)).map_err(unavailable)?;
        let fps = format::set_rate(fd, api, config.fps);
        let name = config.device.clone();
        tracing::info!(
            device = name.as_str(),
            driver = cstr(&cap.driver).as_str(),
            card = cstr(&cap.card).as_str(),
            api = api.name(),
            format = granted.format.name(),
            fourcc = fourcc_name(granted.code).as_str(),
            planes = granted.planes.len(),
            width = granted.width,
            height = granted.height,
            fps,
            asked_width = config.width,
            asked_height = config.height,
            asked_fps = config.fps,
            "camera format negotiated"
        );
        let info = super::SourceInfo {
            driver: cstr(&cap.driver),
            card: cstr(&cap.card),
            format: fourcc_name(granted.code),
            width: granted.width,
            height: granted.height,
            fps,
        };
        let mut source = Self {
            info,
            sequence: None,
            dropped: 0,
            name,
            file,
            api,
            buffers: Vec::new(),
            streaming: false,
            format: granted.format,
            width: granted.width,
            height: granted.height,
            planes: granted.planes,
        };
        source
            .start()
            .map_err(|e| unavailable(errno_reason("start streaming", &e)))?;
        Ok(source)
    }

    fn start(&mut self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let mut req: v4l2_requestbuffers = zeroed();
        req.count = BUFFERS;
        req.type_ = self.api.buf_type();
        req.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        // SAFETY: REQBUFS takes a v4l2_requestbuffers.
        unsafe { xioctl(fd, vidioc::VIDIOC_REQBUFS, &mut req) }?;
        if req.count == 0 {
            return Err(io::Error::other("the driver granted no buffers"));
        }
        for index in 0..req.count {
            let mut planes: PlaneArray = zeroed();
            let mut buf = self.buffer(index, &mut planes);
            // SAFETY: QUERYBUF takes a v4l2_buffer; a multi-planar one points at
            // `planes`, which outlives the call.
            unsafe { xioctl(fd, vidioc::VIDIOC_QUERYBUF, &mut buf) }?;
            // (offset, length) of each plane in the device's memory.
            let parts: Vec<(u32, usize)> = match self.api {
                // SAFETY: `offset` is the union member for MMAP buffers.
                Api::Single => vec![(unsafe { buf.m.offset }, buf.length as usize)],
                Api::Multi => planes[..(buf.length as usize).min(planes.len())]
                    .iter()
                    // SAFETY: `mem_offset` is the union member for MMAP planes.
                    .map(|p| (unsafe { p.m.mem_offset }, p.length as usize))
                    .collect(),
            };
            if parts.len() != self.planes.len() {
                return Err(io::Error::other(format!(
                    "buffer {index} has {} planes, the format {}",
                    parts.len(),
                    self.planes.len()
                )));
            }
            // A plane that fails to map unmaps those mapped before it (Mapping's drop).
            let maps = parts
                .into_iter()
                .map(|(offset, len)| Mapping::new(fd, offset, len))
                .collect::<io::Result<Vec<_>>>()?;
            self.buffers.push(maps);
        }
        for index in 0..req.count {
            let mut planes: PlaneArray = zeroed();
            let mut buf = self.buffer(index, &mut planes);
            // SAFETY: QBUF takes a v4l2_buffer (its planes in `planes`).
            unsafe { xioctl(fd, vidioc::VIDIOC_QBUF, &mut buf) }?;
        }
        let mut kind = self.api.buf_type();
        // SAFETY: STREAMON takes the buffer type.
        unsafe { xioctl(fd, vidioc::VIDIOC_STREAMON, &mut kind) }?;
        self.streaming = true;
        Ok(())
    }

    /// A buffer descriptor for `index`; a multi-planar one points at `planes`,
    /// which must outlive every ioctl it is passed to.
    fn buffer(&self, index: u32, planes: &mut PlaneArray) -> v4l2_buffer {
        let mut buf: v4l2_buffer = zeroed();
        buf.index = index;
        buf.type_ = self.api.buf_type();
        buf.memory = v4l2_memory_V4L2_MEMORY_MMAP;
        if self.api == Api::Multi {
            buf.m.planes = planes.as_mut_ptr();
            buf.length = VIDEO_MAX_PLANES;
        }
        buf
    }

    fn unavailable(&self, e: &io::Error) -> CameraError {
        CameraError::Unavailable {
            device: self.name.clone(),
            reason: errno_reason("capture", e),
        }
    }

    /// The bytes of a dequeued buffer, its planes joined; a short frame as
    /// `(got, want)`.
    fn frame_bytes(
        &self,
        maps: &[Mapping],
        buf: &v4l2_buffer,
        planes: &PlaneArray,
    ) -> Result<Vec<u8>, (usize, usize)> {
        // What the driver filled in each plane: (start, end) in its mapping.
        let used: Vec<(usize, usize)> = match self.api {
            Api::Single => vec![(0, buf.bytesused as usize)],
            Api::Multi => planes[..maps.len()]
                .iter()
                .map(|p| (p.data_offset as usize, p.bytesused as usize))
                .collect(),
        };
        let parts: Vec<&[u8]> = maps
            .iter()
            .zip(&used)
            .map(|(map, &(start, end))| {
                let end = end.min(map.len());
                let start = start.min(end);
                // The driver has handed this buffer to us until it is queued again.
                &map.bytes()[start..end]
            })
            .collect();
        let got: usize = parts.iter().map(|p| p.len()).sum();
        // A plane's sizeimage counts the header before its data (data_offset;
        // vivid's multi-planar mode puts one there), its payload does not.
        let want: usize = self
            .planes
            .iter()
            .zip(&used)
            .map(|(p, &(start, _))| p.size.saturating_sub(start))
            .sum();
        let compressed = matches!(self.format, PixelFormat::Mjpg | PixelFormat::Jpeg);
        match parts.as_slice() {
            [one] => {
                if !compressed && want > 0 && one.len() < want {
                    return Err((got, want));
                }
                Ok(one.to_vec())
            }
            [luma, chroma] => {
                let h = self.height as usize;
                let chroma_rows = if self.format == PixelFormat::Nv16 {
                    h
                } else {
                    h.div_ceil(2)
                };
                join_planes(
                    luma,
                    self.planes[0].stride,
                    h,
                    chroma,
                    self.planes[1].stride,
                    chroma_rows,
                )
                .ok_or((got, want))
            }
            _ => Err((got, want)),
        }
    }

    /// Copies a dequeued buffer out and gives it back to the driver.
    fn take(
        &mut self,
        buf: &mut v4l2_buffer,
        planes: &mut PlaneArray,
    ) -> Result<Next, CameraError> {
        let fd = self.file.as_raw_fd();
        let index = buf.index as usize;
        if let Some(last) = self.sequence {
            // A gap is frames the driver had no free buffer for (the counter wraps
            // at 2^32); a jump of more than a minute's frames is a restarted count.
            let gap = buf.sequence.wrapping_sub(last);
            if (2..=10_000).contains(&gap) {
                self.dropped += u64::from(gap - 1);
            }
        }
        self.sequence = Some(buf.sequence);
        let result = match self.buffers.get(index) {
            None => Next::Bad(FrameError::Empty),
            Some(_) if buf.flags & V4L2_BUF_FLAG_ERROR != 0 => Next::Bad(FrameError::Flagged),
            Some(maps) => match self.frame_bytes(maps, buf, planes) {
                Ok(bytes) => Next::Frame(RawFrame {
                    format: self.format,
                    width: self.width,
                    height: self.height,
                    stride: self.planes[0].stride as u32,
                    data: Zeroizing::new(bytes),
                    captured_ms: now_ms(),
                }),
                Err((got, want)) => Next::Bad(FrameError::Short {
                    format: self.format.name(),
                    width: self.width,
                    height: self.height,
                    got,
                    want,
                }),
            },
        };
        if self.api == Api::Multi {
            buf.m.planes = planes.as_mut_ptr();
        }
        // SAFETY: QBUF takes a v4l2_buffer; this one came from DQBUF (its planes
        // in `planes`).
        unsafe { xioctl(fd, vidioc::VIDIOC_QBUF, buf) }.map_err(|e| self.unavailable(&e))?;
        Ok(result)
    }
}

impl FrameSource for V4l2Source {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> super::SourceInfo {
        self.info.clone()
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }

    fn discard_pending(&mut self) -> Result<usize, CameraError> {
        let fd = self.file.as_raw_fd();
        let mut discarded = 0;
        // At most one pass over the queue: each DQBUF gives back a full buffer, and
        // a frame the driver finishes meanwhile is fresh enough to keep.
        for _ in 0..BUFFERS {
            let mut planes: PlaneArray = zeroed();
            let mut buf = self.buffer(0, &mut planes);
            // SAFETY: DQBUF takes a v4l2_buffer (its planes in `planes`); the file
            // is non-blocking, so an empty queue answers EAGAIN.
            match unsafe { xioctl(fd, vidioc::VIDIOC_DQBUF, &mut buf) } {
                Ok(()) => {
                    if self.api == Api::Multi {
                        buf.m.planes = planes.as_mut_ptr();
                    }
                    // SAFETY: QBUF takes the v4l2_buffer DQBUF just filled.
                    unsafe { xioctl(fd, vidioc::VIDIOC_QBUF, &mut buf) }
                        .map_err(|e| self.unavailable(&e))?;
                    discarded += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(self.unavailable(&e)),
            }
        }
        // The frames the driver dropped while nobody read are no consumer's fault.
        self.sequence = None;
        Ok(discarded)
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
            let mut planes: PlaneArray = zeroed();
            let mut buf = self.buffer(0, &mut planes);
            // SAFETY: DQBUF takes a v4l2_buffer (its planes in `planes`).
            match unsafe { xioctl(fd, vidioc::VIDIOC_DQBUF, &mut buf) } {
                Ok(()) => return self.take(&mut buf, &mut planes),
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
            let mut kind = self.api.buf_type();
            // SAFETY: STREAMOFF takes the buffer type. A gone device fails: nothing to do.
            let _ = unsafe { xioctl(fd, vidioc::VIDIOC_STREAMOFF, &mut kind) };
        }
        // Unmapped once streaming stopped; the file closes after this, and
        // freeing the buffers is implied by the close.
        self.buffers.clear();
    }
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
        assert!(reason(libc::EPERM).contains("device policy"));
        assert!(!reason(libc::EPERM).contains("video group"));
        assert!(reason(libc::EIO).starts_with("start streaming: "));
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
}
