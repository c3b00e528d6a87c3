//! The kernel side of V4L2 for the capture source (and the vivid check): one
//! ioctl retried on EINTR, zeroed kernel structures for the types that may be
//! zeroed ([`Zeroable`]), and a driver buffer mapped into memory ([`Mapping`],
//! unmapped when dropped).

use std::io;
use v4l::v4l_sys::*;
use v4l::v4l2::vidioc;

/// One ioctl, retried on EINTR.
///
/// # Safety
/// `arg` must be the structure `request` expects.
pub unsafe fn xioctl<T>(fd: i32, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
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
pub unsafe trait Zeroable {}
// SAFETY: bindgen's V4L2 structs: integers, arrays, and unions of those (the
// pointers in v4l2_buffer's union are set before the ioctl reads them).
unsafe impl Zeroable for v4l2_capability {}
unsafe impl Zeroable for v4l2_format {}
unsafe impl Zeroable for v4l2_streamparm {}
unsafe impl Zeroable for v4l2_requestbuffers {}
unsafe impl Zeroable for v4l2_buffer {}
unsafe impl Zeroable for v4l2_fmtdesc {}
unsafe impl Zeroable for v4l2_plane {}
unsafe impl Zeroable for v4l2_dv_timings {}
unsafe impl Zeroable for v4l2_enum_dv_timings {}
unsafe impl Zeroable for [v4l2_plane; VIDEO_MAX_PLANES as usize] {}

/// A zeroed V4L2 structure, ready for the ioctl that fills it.
pub fn zeroed<T: Zeroable>() -> T {
    // SAFETY: Zeroable says all-zero bytes are a valid T.
    unsafe { std::mem::zeroed() }
}

/// A driver buffer (or one plane of it) mapped shared, read-write; unmapped when
/// dropped.
pub struct Mapping {
    ptr: *mut std::ffi::c_void,
    len: usize,
}

// SAFETY: the mapping is process-wide shared memory owned by this value alone;
// nothing else holds the pointer.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `len` bytes of the device `fd` at `offset` (the offset QUERYBUF
    /// gave for an MMAP buffer or plane).
    pub fn new(fd: i32, offset: u32, len: usize) -> io::Result<Self> {
        // A 32-bit off_t (armhf) holds offsets below 2 GiB only; a 64-bit one
        // holds every u32 (the conversion is fallible on one target only).
        #[allow(clippy::unnecessary_fallible_conversions)]
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::other(format!("buffer offset {offset} out of range")))?;
        // SAFETY: a new shared mapping of the driver's buffer; the kernel checks
        // the offset and length, and a failure is MAP_FAILED, checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { ptr, len })
    }

    /// The mapping's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The mapped bytes. The driver writes them while the buffer is queued: read
    /// them only between DQBUF and the next QBUF.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` bytes long and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// The mapped bytes, to fill an output buffer before it is queued.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`, and `&mut self` makes this the only view.
        unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `new` mapped, once.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
