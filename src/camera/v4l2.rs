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

use super::frame::{FrameError, PixelFormat, RawFrame};
use super::{CameraError, FrameSource, Next};
use crate::clock::unix_ms as now_ms;
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

/// The kernel's plain-old-data V4L2 structures, for which all-zero bytes are a
/// valid (and the documented initial) value.
///
/// # Safety
/// Only for `repr(C)` structs of integers, arrays and unions of such, with no
/// references, pointers that are dereferenced unset, or enums.
unsafe trait Zeroable {}
// SAFETY: bindgen's V4L2 structs: integers, arrays, and unions of those (the
// pointers in v4l2_buffer's union are set before the ioctl reads them).
unsafe impl Zeroable for v4l2_capability {}
unsafe impl Zeroable for v4l2_format {}
unsafe impl Zeroable for v4l2_streamparm {}
unsafe impl Zeroable for v4l2_requestbuffers {}
unsafe impl Zeroable for v4l2_buffer {}
unsafe impl Zeroable for v4l2_fmtdesc {}
unsafe impl Zeroable for PlaneArray {}

/// A zeroed V4L2 structure, ready for the ioctl that fills it.
fn zeroed<T: Zeroable>() -> T {
    // SAFETY: Zeroable says all-zero bytes are a valid T.
    unsafe { std::mem::zeroed() }
}

/// The V4L2 buffer API of a capture node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    /// `V4L2_CAP_VIDEO_CAPTURE`: one buffer per frame (USB webcams, vivid's default).
    Single,
    /// `V4L2_CAP_VIDEO_CAPTURE_MPLANE`: up to eight planes per frame, each
    /// mapped on its own (MIPI CSI receivers, vivid's `multiplanar=2`).
    Multi,
}

impl Api {
    /// The API a node with these capabilities is used through (single-planar
    /// when it offers both), or why it cannot be used.
    fn of(caps: u32) -> Result<Self, &'static str> {
        let api = if caps & V4L2_CAP_VIDEO_CAPTURE != 0 {
            Self::Single
        } else if caps & V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
            Self::Multi
        } else {
            return Err(
                "not a video capture device (v4l2-ctl --list-devices lists the capture nodes)",
            );
        };
        if caps & V4L2_CAP_STREAMING == 0 {
            return Err("does not support streaming I/O");
        }
        Ok(api)
    }

    fn buf_type(self) -> v4l2_buf_type {
        match self {
            Self::Single => v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE,
            Self::Multi => v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Single => "single-planar",
            Self::Multi => "multi-planar",
        }
    }
}

/// The two-plane formats of the multi-planar API: their name in
/// `camera.formats`, fourcc, and the single-buffer format each is joined into
/// (luma in plane 0, interleaved chroma in plane 1).
const TWO_PLANE: [(&str, &[u8; 4], PixelFormat); 3] = [
    ("NV12M", b"NM12", PixelFormat::Nv12),
    ("NV21M", b"NM21", PixelFormat::Nv21),
    ("NV16M", b"NM16", PixelFormat::Nv16),
];

/// The format a driver's fourcc is handed on as, and its plane count.
fn layout(code: u32) -> Option<(PixelFormat, usize)> {
    TWO_PLANE
        .iter()
        .find(|(_, c, _)| u32::from_le_bytes(**c) == code)
        .map(|&(_, _, f)| (f, 2))
        .or_else(|| PixelFormat::from_fourcc(code).map(|f| (f, 1)))
}

/// What a `camera.formats` name asks for: the format frames are handed on as,
/// and the fourccs that deliver it through `api`, in order of preference. A
/// single-buffer name (`NV12`) takes its own fourcc, and through the
/// multi-planar API also its two-plane variant when the node lacks it; a
/// two-plane name (`NV12M`) takes only that one, which only the multi-planar
/// API has. None for a name the camera code does not know.
pub fn format_named(name: &str, api_is_multi: bool) -> Option<(PixelFormat, Vec<u32>)> {
    let name = name.trim_end();
    if let Some(&(_, code, format)) = TWO_PLANE.iter().find(|(n, _, _)| *n == name) {
        let codes = if api_is_multi {
            vec![u32::from_le_bytes(*code)]
        } else {
            Vec::new()
        };
        return Some((format, codes));
    }
    let format = PixelFormat::from_name(name)?;
    let mut codes = vec![format.fourcc()];
    if api_is_multi {
        codes.extend(
            TWO_PLANE
                .iter()
                .filter(|(_, _, f)| *f == format)
                .map(|(_, c, _)| u32::from_le_bytes(**c)),
        );
    }
    Some((format, codes))
}

/// One plane's layout, as the driver set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Plane {
    stride: usize,
    size: usize,
}

/// A two-plane frame as one buffer with plane 0's stride: `luma_rows` rows of
/// plane 0, then `chroma_rows` rows of plane 1 (each cut or padded to that
/// stride; chroma rows are never wider than luma rows). None when a plane holds
/// fewer rows than the format needs.
fn join_planes(
    luma: &[u8],
    luma_stride: usize,
    luma_rows: usize,
    chroma: &[u8],
    chroma_stride: usize,
    chroma_rows: usize,
) -> Option<Vec<u8>> {
    let luma = luma.get(..luma_stride.checked_mul(luma_rows)?)?;
    let mut out = Vec::with_capacity(luma_stride * (luma_rows + chroma_rows));
    out.extend_from_slice(luma);
    if chroma_stride == luma_stride {
        out.extend_from_slice(chroma.get(..chroma_stride.checked_mul(chroma_rows)?)?);
    } else {
        if chroma_stride == 0 || chroma.len() < chroma_stride.checked_mul(chroma_rows)? {
            return None;
        }
        let keep = chroma_stride.min(luma_stride);
        for row in chroma.chunks(chroma_stride).take(chroma_rows) {
            out.extend_from_slice(&row[..keep]);
            out.resize(out.len() + (luma_stride - keep), 0);
        }
    }
    Some(out)
}

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

struct Mapping {
    ptr: *mut std::ffi::c_void,
    len: usize,
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

// SAFETY: the mappings are process-wide shared memory owned by this value alone;
// nothing else holds the pointers.
unsafe impl Send for V4l2Source {}

impl V4l2Source {
    /// Opens `camera.device`, negotiates the first of `camera.formats` the node offers
    /// at the configured size and rate, maps its buffers and starts streaming; errors
    /// name the device and what to do.
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
        let api = Api::of(caps).map_err(|reason| CameraError::Unavailable {
            device: name.clone(),
            reason: reason.into(),
        })?;

        let offered = offered_formats(fd, api);
        let Some((wanted, wanted_code)) = config
            .formats
            .iter()
            .filter_map(|n| format_named(n, api == Api::Multi))
            .find_map(|(f, codes)| {
                codes
                    .into_iter()
                    .find(|c| offered.contains(c))
                    .map(|c| (f, c))
            })
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
        fmt.type_ = api.buf_type();
        match api {
            Api::Single => {
                // `pix` is the union member for VIDEO_CAPTURE.
                fmt.fmt.pix.width = config.width;
                fmt.fmt.pix.height = config.height;
                fmt.fmt.pix.pixelformat = wanted_code;
                fmt.fmt.pix.field = v4l2_field_V4L2_FIELD_NONE;
            }
            Api::Multi => {
                // `pix_mp` is the union member for VIDEO_CAPTURE_MPLANE; the
                // driver fills in the planes.
                fmt.fmt.pix_mp.width = config.width;
                fmt.fmt.pix_mp.height = config.height;
                fmt.fmt.pix_mp.pixelformat = wanted_code;
                fmt.fmt.pix_mp.field = v4l2_field_V4L2_FIELD_NONE;
            }
        }
        // SAFETY: S_FMT takes a v4l2_format.
        unsafe { xioctl(fd, vidioc::VIDIOC_S_FMT, &mut fmt) }.map_err(|e| fail("set format", e))?;
        let (code, width, height, planes) = match api {
            Api::Single => {
                // SAFETY: the driver filled `pix` for VIDEO_CAPTURE.
                let pix = unsafe { fmt.fmt.pix };
                let plane = Plane {
                    stride: pix.bytesperline as usize,
                    size: pix.sizeimage as usize,
                };
                (pix.pixelformat, pix.width, pix.height, vec![plane])
            }
            Api::Multi => {
                // SAFETY: the driver filled `pix_mp` for VIDEO_CAPTURE_MPLANE.
                let mp = unsafe { fmt.fmt.pix_mp };
                // (Copied out of the packed structure before indexing.)
                let plane_fmt = mp.plane_fmt;
                let n = usize::from(mp.num_planes).min(plane_fmt.len());
                let planes = plane_fmt[..n]
                    .iter()
                    .map(|p| Plane {
                        stride: p.bytesperline as usize,
                        size: p.sizeimage as usize,
                    })
                    .collect();
                (mp.pixelformat, mp.width, mp.height, planes)
            }
        };
        let Some((format, plane_count)) = layout(code).filter(|&(f, _)| f == wanted) else {
            return Err(CameraError::Unavailable {
                device: name,
                reason: format!(
                    "asked for {}, the driver gave {}",
                    fourcc_name(wanted_code),
                    fourcc_name(code)
                ),
            });
        };
        if planes.len() != plane_count {
            return Err(CameraError::Unavailable {
                device: name,
                reason: format!(
                    "the driver gave {} in {} planes; {} comes in {plane_count}",
                    fourcc_name(code),
                    planes.len(),
                    fourcc_name(code)
                ),
            });
        }
        if let Err(problem) = super::check_size((config.width, config.height), (width, height)) {
            return Err(CameraError::Unavailable {
                device: name,
                reason: format!(
                    "the driver gave {problem}: set camera.width and camera.height to a size \
                     it offers (v4l2-ctl --list-formats-ext)"
                ),
            });
        }

        let mut parm: v4l2_streamparm = zeroed();
        parm.type_ = api.buf_type();
        // `capture` is the union member for both capture types.
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
            api = api.name(),
            format = format.name(),
            fourcc = fourcc_name(code).as_str(),
            planes = planes.len(),
            width,
            height,
            fps,
            asked_width = config.width,
            asked_height = config.height,
            asked_fps = config.fps,
            "camera format negotiated"
        );

        let info = super::SourceInfo {
            driver: cstr(&cap.driver),
            card: cstr(&cap.card),
            format: fourcc_name(code),
            width,
            height,
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
            format,
            width,
            height,
            planes,
        };
        source.start().map_err(|e| fail("start streaming", e))?;
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
            let mut maps = Vec::with_capacity(parts.len());
            for (offset, len) in parts {
                // SAFETY: mapping the driver's plane at the offset it gave; checked below.
                let ptr = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        fd,
                        offset as libc::off_t,
                    )
                };
                if ptr == libc::MAP_FAILED {
                    let e = io::Error::last_os_error();
                    // The planes mapped so far are unmapped by Drop.
                    self.buffers.push(maps);
                    return Err(e);
                }
                maps.push(Mapping { ptr, len });
            }
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
                let end = end.min(map.len);
                let start = start.min(end);
                // SAFETY: the mapping is `map.len` bytes long and the driver has
                // handed this buffer to us until it is queued again.
                let all = unsafe { std::slice::from_raw_parts(map.ptr as *const u8, map.len) };
                &all[start..end]
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
        for map in self.buffers.drain(..).flatten() {
            // SAFETY: unmapping what `start` mapped, once.
            unsafe { libc::munmap(map.ptr, map.len) };
        }
        // The file closes after this; freeing the buffers is implied by the close.
    }
}

/// The fourccs the device offers for capture through `api`.
fn offered_formats(fd: i32, api: Api) -> Vec<u32> {
    let mut out = Vec::new();
    for index in 0..256 {
        let mut desc: v4l2_fmtdesc = zeroed();
        desc.index = index;
        desc.type_ = api.buf_type();
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
    fn the_api_is_the_one_the_node_offers() {
        let s = V4L2_CAP_STREAMING;
        assert_eq!(Api::of(V4L2_CAP_VIDEO_CAPTURE | s), Ok(Api::Single));
        assert_eq!(Api::of(V4L2_CAP_VIDEO_CAPTURE_MPLANE | s), Ok(Api::Multi));
        // Both: the single-planar one.
        let both = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE | s;
        assert_eq!(Api::of(both), Ok(Api::Single));
        let no = |caps| Api::of(caps).err().unwrap_or_default();
        assert!(no(V4L2_CAP_VIDEO_OUTPUT | s).contains("not a video capture device"));
        assert!(no(V4L2_CAP_VIDEO_OUTPUT_MPLANE | s).contains("not a video capture device"));
        assert!(no(V4L2_CAP_VIDEO_CAPTURE_MPLANE).contains("streaming"));
        assert_eq!(
            Api::Multi.buf_type(),
            v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
        );
    }

    #[test]
    fn two_plane_fourccs_are_their_single_buffer_formats() {
        let code = |c: &[u8; 4]| u32::from_le_bytes(*c);
        assert_eq!(layout(code(b"NM12")), Some((PixelFormat::Nv12, 2)));
        assert_eq!(layout(code(b"NM21")), Some((PixelFormat::Nv21, 2)));
        assert_eq!(layout(code(b"NM16")), Some((PixelFormat::Nv16, 2)));
        assert_eq!(layout(code(b"NV12")), Some((PixelFormat::Nv12, 1)));
        assert_eq!(layout(code(b"YUYV")), Some((PixelFormat::Yuyv, 1)));
        assert_eq!(layout(code(b"YM12")), None);
        let named = format_named;
        // NV12 takes NV12M only through the multi-planar API, after NV12.
        assert_eq!(
            named("NV12", false),
            Some((PixelFormat::Nv12, vec![code(b"NV12")]))
        );
        assert_eq!(
            named("NV12", true),
            Some((PixelFormat::Nv12, vec![code(b"NV12"), code(b"NM12")]))
        );
        assert_eq!(
            named("NV16M", true),
            Some((PixelFormat::Nv16, vec![code(b"NM16")]))
        );
        assert_eq!(named("NV21M", false), Some((PixelFormat::Nv21, vec![])));
        assert_eq!(
            named("GREY", true),
            Some((PixelFormat::Grey, vec![code(b"GREY")]))
        );
        assert_eq!(
            named("Y10 ", true),
            Some((PixelFormat::Y10, vec![code(b"Y10 ")]))
        );
        assert_eq!(named("YU12", true), None);
    }

    /// NV12M from a real photo: its planes joined give the NV12 buffer, with
    /// equal strides and with a narrower chroma stride; a short plane is refused.
    #[test]
    fn two_planes_join_into_the_one_buffer_layout() {
        let img = image::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/faces/astronaut.jpg"
        ))
        .expect("photo")
        .to_luma8();
        let (w, h) = (64usize, 48usize);
        let luma: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| img.get_pixel(x as u32 * 3, y as u32 * 3)[0])
            .collect();
        let chroma: Vec<u8> = luma[..w * h / 2].iter().map(|v| v ^ 0x55).collect();
        let mut nv12 = luma.clone();
        nv12.extend_from_slice(&chroma);
        assert_eq!(
            join_planes(&luma, w, h, &chroma, w, h / 2).as_deref(),
            Some(&nv12[..])
        );
        // Luma padded to 80 bytes a row, chroma at 64: chroma rows padded to 80.
        let padded: Vec<u8> = luma
            .chunks(w)
            .flat_map(|r| [r, &[0u8; 16][..]].concat())
            .collect();
        let joined = join_planes(&padded, 80, h, &chroma, w, h / 2).expect("joined");
        assert_eq!(joined.len(), 80 * (h + h / 2));
        assert_eq!(&joined[..80 * h], &padded[..]);
        assert_eq!(&joined[80 * h..80 * h + w], &chroma[..w]);
        assert_eq!(&joined[80 * h + w..80 * h + 80], &[0u8; 16][..]);
        let f = RawFrame {
            format: PixelFormat::Nv12,
            width: w as u32,
            height: h as u32,
            stride: 80,
            data: Zeroizing::new(joined),
            captured_ms: 0.0,
        };
        let gray = f.to_gray().expect("gray");
        assert_eq!(gray.as_raw(), &luma);
        assert_eq!(
            join_planes(&luma[..w * (h - 1)], w, h, &chroma, w, h / 2),
            None
        );
        assert_eq!(join_planes(&luma, w, h, &chroma[..w], w, h / 2), None);
        assert_eq!(join_planes(&luma, w, h, &chroma, 0, h / 2), None);
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
