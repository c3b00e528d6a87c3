//! Converts a photo into one raw 640x480 YUYV frame, the way a V4L2 output device
//! takes it: the booted-system test (tests/system/run.sh) streams it into vivid's
//! HDMI output with `v4l2-ctl --stream-out-mmap --stream-from FILE`.
//!
//! Usage: `yuyv_frame PHOTO OUT`

use facecapture::camera::frame::rgb_to_yuyv;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [photo, out] = args.as_slice() else {
        eprintln!("usage: yuyv_frame PHOTO OUT");
        return ExitCode::from(2);
    };
    let rgb = match image::open(photo) {
        Ok(img) => img
            .resize_exact(640, 480, image::imageops::FilterType::Triangle)
            .to_rgb8(),
        Err(e) => {
            eprintln!("yuyv_frame: {photo}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match std::fs::write(out, rgb_to_yuyv(&rgb)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("yuyv_frame: {out}: {e}");
            ExitCode::FAILURE
        }
    }
}
