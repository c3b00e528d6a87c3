//! The `files` frame source: still images from a directory or a glob, played in
//! name order at `camera.fps` and looped, as a camera would deliver them. JPEG
//! files are handed on as MJPEG frames (decoded per frame, like a webcam's);
//! other formats are decoded once when the source opens.

use super::frame::{FrameError, PixelFormat, RawFrame};
use super::{CameraError, FrameSource, Next};
use crate::clock::unix_ms as now_ms;
use crate::config::CameraConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// More images than this is a misconfiguration, not a demo.
const MAX_FILES: usize = 1000;
/// No camera frame is this large.
const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;
const EXTENSIONS: [&str; 5] = ["jpg", "jpeg", "png", "bmp", "pgm"];

enum Image {
    Frame(RawFrame),
    /// A file that does not decode: delivered as a bad frame, like a corrupt one.
    Bad(String),
}

/// Frames from picture files (`camera.source = "files"`): a file, or a directory whose
/// pictures loop; read anew on each frame, so a test can change what the camera sees.
pub struct FilesSource {
    name: String,
    images: Vec<Image>,
    next: usize,
    interval: Duration,
    due: Instant,
    info: super::SourceInfo,
}

impl FilesSource {
    /// Opens the path of `camera.path`; CameraUnavailable when there is nothing to
    /// read.
    pub fn open(config: &CameraConfig) -> Result<Self, CameraError> {
        let name = config.path.clone();
        let unavailable = |reason: String| CameraError::Unavailable {
            device: name.clone(),
            reason,
        };
        let paths = list(&config.path).map_err(unavailable)?;
        if paths.is_empty() {
            return Err(unavailable("no images (jpg, png, bmp, pgm) found".into()));
        }
        if paths.len() > MAX_FILES {
            return Err(unavailable(format!(
                "{} images, at most {MAX_FILES} are played",
                paths.len()
            )));
        }
        let asked = (config.width, config.height);
        let images = paths
            .iter()
            .map(|p| load(p, asked))
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        // The first picture stands for the stream's format and size.
        let info = images
            .iter()
            .find_map(|i| match i {
                Image::Frame(f) => Some(super::SourceInfo {
                    driver: "files".into(),
                    card: name.clone(),
                    format: f.format.name().into(),
                    width: f.width,
                    height: f.height,
                    fps: f64::from(config.fps.max(1)),
                }),
                Image::Bad(_) => None,
            })
            .unwrap_or_default();
        Ok(Self {
            info,
            name,
            images,
            next: 0,
            interval: Duration::from_secs(1) / config.fps.max(1),
            due: Instant::now(),
        })
    }
}

fn list(path: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = if path.contains(['*', '?', '[']) {
        glob::glob(path)
            .map_err(|e| format!("bad glob: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect::<Vec<_>>()
    } else if Path::new(path).is_dir() {
        std::fs::read_dir(path)
            .map_err(|e| format!("cannot read the directory: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect()
    } else if Path::new(path).is_file() {
        vec![PathBuf::from(path)]
    } else {
        return Err("no such file, directory or glob match".into());
    };
    paths.sort();
    Ok(paths)
}

/// One image file as the frame this source would deliver (`facecapturectl detect`
/// runs photos through the pipeline this way).
pub fn frame_from_file(path: &Path) -> Result<RawFrame, String> {
    let any = (super::MAX_SIDE, super::MAX_SIDE);
    match load(path, any)? {
        Image::Frame(mut f) => {
            f.captured_ms = now_ms();
            Ok(f)
        }
        Image::Bad(why) => Err(why),
    }
}

/// Reads one file as a frame. Its size, read from its header, is held to
/// [`super::check_size`] against `asked` before it is decoded: a small PNG can
/// name 8192x8192.
fn load(path: &Path, asked: (u32, u32)) -> Result<Image, String> {
    let len = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(format!(
            "{}: {len} bytes is too large for a frame",
            path.display()
        ));
    }
    let bytes =
        Zeroizing::new(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?);
    let bad = |e: &dyn std::fmt::Display| Image::Bad(format!("{}: {e}", path.display()));
    let reader =
        match image::ImageReader::new(std::io::Cursor::new(&bytes[..])).with_guessed_format() {
            Ok(r) => r,
            Err(e) => return Ok(bad(&e)),
        };
    let size = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(image::ImageError::IoError)
        .and_then(|r| r.into_dimensions());
    let (width, height) = match size {
        Ok(d) => d,
        Err(e) => return Ok(bad(&e)),
    };
    if let Err(problem) = super::check_size(asked, (width, height)) {
        return Ok(bad(&problem));
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        return Ok(Image::Frame(RawFrame {
            format: PixelFormat::Mjpg,
            width,
            height,
            stride: 0,
            data: bytes,
            captured_ms: 0.0,
        }));
    }
    match reader.decode() {
        Ok(img) => {
            let rgb = img.into_rgb8();
            let (width, height) = rgb.dimensions();
            Ok(Image::Frame(RawFrame {
                format: PixelFormat::Rgb24,
                width,
                height,
                stride: 0,
                data: Zeroizing::new(rgb.into_raw()),
                captured_ms: 0.0,
            }))
        }
        Err(e) => Ok(bad(&e)),
    }
}

impl FrameSource for FilesSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn info(&self) -> super::SourceInfo {
        self.info.clone()
    }

    fn next_frame(&mut self, deadline: Instant) -> Result<Next, CameraError> {
        let now = Instant::now();
        if self.due > deadline {
            std::thread::sleep(deadline.saturating_duration_since(now));
            return Ok(Next::Deadline);
        }
        std::thread::sleep(self.due.saturating_duration_since(now));
        // Keep the rate without bursting after a slow consumer.
        self.due = (self.due + self.interval).max(Instant::now());
        let image = &self.images[self.next % self.images.len()];
        self.next = (self.next + 1) % self.images.len();
        Ok(match image {
            Image::Frame(f) => Next::Frame(RawFrame {
                format: f.format,
                width: f.width,
                height: f.height,
                stride: f.stride,
                data: f.data.clone(),
                captured_ms: now_ms(),
            }),
            Image::Bad(why) => Next::Bad(FrameError::Jpeg(why.clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CameraSource;

    fn config(path: &str, fps: u32) -> CameraConfig {
        CameraConfig {
            source: CameraSource::Files,
            path: path.into(),
            fps,
            ..CameraConfig::default()
        }
    }

    fn faces_dir() -> String {
        format!("{}/tests/fixtures/faces", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn plays_a_directory_in_name_order_and_loops() {
        let mut s = FilesSource::open(&config(&faces_dir(), 200)).expect("open");
        let far = Instant::now() + Duration::from_secs(5);
        let mut widths = Vec::new();
        for _ in 0..5 {
            match s.next_frame(far).expect("frame") {
                Next::Frame(f) => {
                    assert_eq!(f.format, PixelFormat::Mjpg);
                    assert!(f.captured_ms > 1.6e12);
                    widths.push(f.width);
                }
                other => panic!("{other:?}"),
            }
        }
        // astronaut, no-face, solvay-einstein, solvay-group, then astronaut again.
        assert_eq!(widths[0], widths[4]);
    }

    #[test]
    fn a_glob_selects_files_and_a_bad_file_is_a_bad_frame() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::copy(
            format!("{}/astronaut.jpg", faces_dir()),
            dir.path().join("a.jpg"),
        )
        .expect("copy");
        std::fs::write(dir.path().join("b.jpg"), b"\xff\xd8 truncated").expect("write");
        std::fs::write(dir.path().join("c.txt"), b"ignored").expect("write");
        let glob = format!("{}/*.jpg", dir.path().display());
        let mut s = FilesSource::open(&config(&glob, 100)).expect("open");
        let far = Instant::now() + Duration::from_secs(5);
        assert!(matches!(s.next_frame(far), Ok(Next::Frame(_))));
        assert!(matches!(s.next_frame(far), Ok(Next::Bad(_))));
        // A directory skips the .txt.
        let s = FilesSource::open(&config(&dir.path().display().to_string(), 100)).expect("open");
        assert_eq!(s.images.len(), 2);
    }

    #[test]
    fn paced_at_fps_and_the_deadline_wins() {
        let mut s = FilesSource::open(&config(&faces_dir(), 10)).expect("open");
        let far = Instant::now() + Duration::from_secs(5);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(matches!(s.next_frame(far), Ok(Next::Frame(_))));
        }
        // Three frames at 10 fps: the first at once, then two 100 ms intervals.
        assert!(
            t.elapsed() >= Duration::from_millis(190),
            "{:?}",
            t.elapsed()
        );
        assert!(matches!(s.next_frame(Instant::now()), Ok(Next::Deadline)));
    }

    #[test]
    fn nothing_to_play_is_unavailable_with_the_path() {
        let dir = tempfile::tempdir().expect("tmp");
        for path in [dir.path().display().to_string(), "/nonexistent/x".into()] {
            let e = FilesSource::open(&config(&path, 30)).err().expect("error");
            assert!(e.to_string().contains(&path), "{e}");
        }
    }
}
