//! What the emulator checks in a face package: every frame is a base64 JPEG of the
//! same size holding exactly one face ("liveness"), and a coarse template of that
//! face for matching at verifyFace. The template is a 32x32 normalised crop,
//! compared by correlation: enough to tell the fixtures' people apart, not a
//! biometric matcher.

use image::GrayImage;
use image::imageops::FilterType;

use facecapture::awareid::wire::Frame;
use facecapture::detect::Detector;

const TEMPLATE_SIDE: u32 = 32;
/// Correlation at or above which two templates match.
pub const MATCH_THRESHOLD: f32 = 0.75;

#[derive(Debug, Clone)]
pub struct Template(Vec<f32>);

#[derive(Debug)]
pub struct Analysis {
    /// Faces found in each frame.
    pub faces: Vec<usize>,
    /// The face of the first single-face frame.
    pub template: Option<Template>,
}

impl Analysis {
    pub fn live(&self) -> bool {
        !self.faces.is_empty() && self.faces.iter().all(|&n| n == 1)
    }

    pub fn feedback(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        if self.faces.contains(&0) {
            f.push("NO_FACE_DETECTED");
        }
        if self.faces.iter().any(|&n| n > 1) {
            f.push("MULTIPLE_FACES_DETECTED");
        }
        f
    }
}

/// Decodes and checks the frames. An error names what is wrong with the package.
pub fn analyse(
    detector: &mut Detector,
    frames: &[Frame],
    min_face_px: u32,
) -> Result<Analysis, String> {
    if frames.is_empty() {
        return Err("workflow_data.frames is empty".into());
    }
    if frames.len() > 20 {
        return Err(format!(
            "workflow_data.frames has {} frames; at most 20",
            frames.len()
        ));
    }
    let mut size = None;
    let mut faces = Vec::with_capacity(frames.len());
    let mut template = None;
    for (i, frame) in frames.iter().enumerate() {
        let bytes = facecapture::crypto::unb64(&frame.data)
            .map_err(|_| format!("frames[{i}].data is not base64"))?;
        if image::guess_format(&bytes).ok() != Some(image::ImageFormat::Jpeg) {
            return Err(format!("frames[{i}].data is not a JPEG"));
        }
        let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
            .map_err(|e| format!("frames[{i}].data does not decode: {e}"))?
            .to_luma8();
        match size {
            None => size = Some(img.dimensions()),
            Some(s) if s != img.dimensions() => {
                return Err(format!(
                    "frames[{i}] is {:?}, frames[0] is {s:?}",
                    img.dimensions()
                ));
            }
            Some(_) => {}
        }
        if !frame.timestamp.is_finite() || frame.timestamp <= 0.0 {
            return Err(format!("frames[{i}].timestamp is not a time in ms"));
        }
        let found = detector.detect(&img, min_face_px);
        if found.len() == 1 && template.is_none() {
            template = Some(template_of(&img, &found[0]));
        }
        faces.push(found.len());
    }
    Ok(Analysis { faces, template })
}

fn template_of(img: &GrayImage, face: &facecapture::detect::FaceBox) -> Template {
    let x = face.x.max(0) as u32;
    let y = face.y.max(0) as u32;
    let w = face.width.min(img.width().saturating_sub(x)).max(1);
    let h = face.height.min(img.height().saturating_sub(y)).max(1);
    let crop = image::imageops::crop_imm(img, x, y, w, h).to_image();
    let small = image::imageops::resize(&crop, TEMPLATE_SIDE, TEMPLATE_SIDE, FilterType::Triangle);
    let v: Vec<f32> = small.as_raw().iter().map(|&p| f32::from(p)).collect();
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let var = v.iter().map(|p| (p - mean).powi(2)).sum::<f32>() / v.len() as f32;
    let sd = var.sqrt().max(1e-3);
    Template(v.iter().map(|p| (p - mean) / sd).collect())
}

/// Pearson correlation of two templates, in [-1, 1].
pub fn similarity(a: &Template, b: &Template) -> f32 {
    a.0.iter().zip(&b.0).map(|(x, y)| x * y).sum::<f32>() / a.0.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Frame {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/faces")
            .join(name);
        Frame {
            data: facecapture::crypto::b64(&std::fs::read(p).expect("fixture")),
            tags: vec![],
            timestamp: 1_700_000_000_000.0,
        }
    }

    #[test]
    fn liveness_and_matching_on_real_photos() {
        let mut d = Detector::embedded().expect("model");
        let astro = analyse(
            &mut d,
            &[frame("astronaut.jpg"), frame("astronaut.jpg")],
            60,
        )
        .expect("astronaut");
        assert!(astro.live());
        let einstein = analyse(&mut d, &[frame("solvay-einstein.jpg")], 60).expect("einstein");
        assert!(einstein.live());
        let (a, e) = (astro.template.expect("t"), einstein.template.expect("t"));
        assert!(similarity(&a, &a) > 0.99);
        let cross = similarity(&a, &e);
        assert!(
            cross < MATCH_THRESHOLD,
            "astronaut vs einstein correlate at {cross}"
        );

        let group = analyse(&mut d, &[frame("solvay-group.jpg")], 40).expect("group");
        assert!(!group.live());
        assert_eq!(group.feedback(), ["MULTIPLE_FACES_DETECTED"]);
        let none = analyse(&mut d, &[frame("no-face.jpg")], 60).expect("none");
        assert_eq!(none.feedback(), ["NO_FACE_DETECTED"]);
    }

    #[test]
    fn bad_packages_are_named() {
        let mut d = Detector::embedded().expect("model");
        assert!(
            analyse(&mut d, &[], 60)
                .expect_err("empty")
                .contains("empty")
        );
        let mut f = frame("astronaut.jpg");
        f.data = "@@".into();
        assert!(
            analyse(&mut d, &[f], 60)
                .expect_err("b64")
                .contains("frames[0].data is not base64")
        );
        let mut f = frame("astronaut.jpg");
        f.data = facecapture::crypto::b64(b"GIF89a....");
        assert!(
            analyse(&mut d, &[f], 60)
                .expect_err("gif")
                .contains("not a JPEG")
        );
        let mut f = frame("astronaut.jpg");
        f.timestamp = f64::NAN;
        assert!(
            analyse(&mut d, &[f], 60)
                .expect_err("ts")
                .contains("timestamp")
        );
    }
}
