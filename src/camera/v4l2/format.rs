//! Formats and planes: the V4L2 buffer API a node is used through, the fourccs
//! a `camera.formats` name asks for, what the node offers, and joining a
//! two-plane frame into its single-buffer layout.

use super::errno_reason;
use super::sys::{xioctl, zeroed};
use crate::camera::frame::PixelFormat;
use crate::config::CameraConfig;
use v4l::v4l_sys::*;
use v4l::v4l2::vidioc;

/// The V4L2 buffer API of a capture node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Api {
    /// `V4L2_CAP_VIDEO_CAPTURE`: one buffer per frame (USB webcams, vivid's default).
    Single,
    /// `V4L2_CAP_VIDEO_CAPTURE_MPLANE`: up to eight planes per frame, each
    /// mapped on its own (MIPI CSI receivers, vivid's `multiplanar=2`).
    Multi,
}

impl Api {
    /// The API a node with these capabilities is used through (single-planar
    /// when it offers both), or why it cannot be used.
    pub(super) fn of(caps: u32) -> Result<Self, &'static str> {
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

    pub(super) fn buf_type(self) -> v4l2_buf_type {
        match self {
            Self::Single => v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE,
            Self::Multi => v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        }
    }

    pub(super) fn name(self) -> &'static str {
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
pub(super) fn layout(code: u32) -> Option<(PixelFormat, usize)> {
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
pub(super) struct Plane {
    pub stride: usize,
    pub size: usize,
}

/// A two-plane frame as one buffer with plane 0's stride: `luma_rows` rows of
/// plane 0, then `chroma_rows` rows of plane 1 (each cut or padded to that
/// stride; chroma rows are never wider than luma rows). None when a plane holds
/// fewer rows than the format needs.
pub(super) fn join_planes(
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

/// The fourccs the device offers for capture through `api`.
pub(super) fn offered_formats(fd: i32, api: Api) -> Vec<u32> {
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

pub(super) fn fourcc_name(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// The node's capabilities and the API it is used through, or why it cannot be.
pub(super) fn query(fd: i32) -> Result<(v4l2_capability, Api), String> {
    let mut cap: v4l2_capability = zeroed();
    // SAFETY: QUERYCAP takes a v4l2_capability.
    unsafe { xioctl(fd, vidioc::VIDIOC_QUERYCAP, &mut cap) }
        .map_err(|e| errno_reason("not a V4L2 device", &e))?;
    let caps = if cap.capabilities & V4L2_CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    };
    let api = Api::of(caps)?;
    Ok((cap, api))
}

/// The first of `formats` the node offers through `api`: the format frames are
/// handed on as and the fourcc to ask for.
pub(super) fn choose(fd: i32, api: Api, formats: &[String]) -> Result<(PixelFormat, u32), String> {
    let offered = offered_formats(fd, api);
    formats
        .iter()
        .filter_map(|n| format_named(n, api == Api::Multi))
        .find_map(|(f, codes)| {
            codes
                .into_iter()
                .find(|c| offered.contains(c))
                .map(|c| (f, c))
        })
        .ok_or_else(|| {
            let names: Vec<String> = offered.iter().map(|c| fourcc_name(*c)).collect();
            format!("offers none of camera.formats {formats:?} (it offers {names:?})")
        })
}

/// What the driver granted: the format frames are handed on as, its fourcc,
/// size and planes.
pub(super) struct Granted {
    pub format: PixelFormat,
    pub code: u32,
    pub width: u32,
    pub height: u32,
    pub planes: Vec<Plane>,
}

/// Asks for `wanted` at the configured size; what the driver granted, or why it
/// cannot be used (another format, a plane count or a size out of bounds).
pub(super) fn set(
    fd: i32,
    api: Api,
    config: &CameraConfig,
    (wanted, wanted_code): (PixelFormat, u32),
) -> Result<Granted, String> {
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
    unsafe { xioctl(fd, vidioc::VIDIOC_S_FMT, &mut fmt) }
        .map_err(|e| errno_reason("set format", &e))?;
    let (code, width, height, planes) = granted_layout(api, &fmt);
    let Some((format, plane_count)) = layout(code).filter(|&(f, _)| f == wanted) else {
        return Err(format!(
            "asked for {}, the driver gave {}",
            fourcc_name(wanted_code),
            fourcc_name(code)
        ));
    };
    if planes.len() != plane_count {
        return Err(format!(
            "the driver gave {} in {} planes; {} comes in {plane_count}",
            fourcc_name(code),
            planes.len(),
            fourcc_name(code)
        ));
    }
    if let Err(problem) = crate::camera::check_size((config.width, config.height), (width, height))
    {
        return Err(format!(
            "the driver gave {problem}: set camera.width and camera.height to a size \
             it offers (v4l2-ctl --list-formats-ext)"
        ));
    }
    Ok(Granted {
        format,
        code,
        width,
        height,
        planes,
    })
}

/// The fourcc, size and planes in a format the driver filled through `api`.
fn granted_layout(api: Api, fmt: &v4l2_format) -> (u32, u32, u32, Vec<Plane>) {
    match api {
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
    }
}

/// Asks for `fps`; the rate the driver granted (0 when it cannot set one: HDMI
/// capture follows its source; that is logged, not refused).
pub(super) fn set_rate(fd: i32, api: Api, fps: u32) -> f64 {
    let mut parm: v4l2_streamparm = zeroed();
    parm.type_ = api.buf_type();
    // `capture` is the union member for both capture types.
    parm.parm.capture.timeperframe.numerator = 1;
    parm.parm.capture.timeperframe.denominator = fps;
    // SAFETY: S_PARM takes a v4l2_streamparm.
    match unsafe { xioctl(fd, vidioc::VIDIOC_S_PARM, &mut parm) } {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::RawFrame;
    use zeroize::Zeroizing;

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
    fn fourcc_names_are_printable() {
        assert_eq!(fourcc_name(PixelFormat::Yuyv.fourcc()), "YUYV");
        assert_eq!(fourcc_name(0), "????");
    }
}
