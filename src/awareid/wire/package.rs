//! The Face SDK's package, `faceLivenessData`: frames (base64 JPEGs, tags,
//! timestamps), how to read them and who sent them (docs/face-data.md); the
//! value sent plain or sealed in the envelope.

use crate::crypto::envelope::Envelope;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One frame of the Face SDK package: a base64 JPEG, tags, ms since the epoch.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// The frame, a base64 JPEG (face data: wiped on drop).
    pub data: String,
    /// The Face SDK's tags (none today).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Capture time, in milliseconds since the epoch.
    pub timestamp: f64,
}

/// A frame's base64 JPEG is a face image: wiped when the package is dropped.
impl Drop for Frame {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Frame {{ {} base64 bytes, t={} }}",
            self.data.len(),
            self.timestamp
        )
    }
}

/// The package's frames and how to read them.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkflowData {
    /// The AwareID workflow (`face.workflow`).
    pub workflow: String,
    /// Degrees the frames were turned (they are sent upright: 0).
    pub rotation: i32,
    /// The compliant frames, in capture order.
    pub frames: Vec<Frame>,
}

/// Who and what sent the package.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetaData {
    /// `face.device_brand`.
    pub client_device_brand: String,
    /// The person the package is for.
    pub username: String,
    /// [`client_version`].
    pub client_version: String,
}

/// The package's one object.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Video {
    /// The frames.
    pub workflow_data: WorkflowData,
    /// Who and what sent them.
    pub meta_data: MetaData,
}

/// The Face SDK's package: what the capture pipeline produces.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FaceLivenessData {
    /// The frames and their meta data.
    pub video: Video,
}

impl FaceLivenessData {
    /// The package for JPEG frames with their capture times (ms since the epoch).
    pub fn from_jpegs(
        workflow: &str,
        rotation: i32,
        frames: &[(&[u8], f64)],
        meta_data: MetaData,
    ) -> Self {
        Self {
            video: Video {
                workflow_data: WorkflowData {
                    workflow: workflow.to_owned(),
                    rotation,
                    frames: frames
                        .iter()
                        .map(|(jpeg, timestamp)| Frame {
                            data: crate::crypto::b64(jpeg),
                            tags: Vec::new(),
                            timestamp: *timestamp,
                        })
                        .collect(),
                },
                meta_data,
            },
        }
    }
}

impl MetaData {
    /// This terminal's meta_data for `username`.
    pub fn for_terminal(device_brand: &str, username: &str) -> Self {
        Self {
            client_device_brand: device_brand.to_owned(),
            username: username.to_owned(),
            client_version: client_version(),
        }
    }
}

/// `facecaptured/<version> (<target arch>)`, sent as meta_data.client_version.
pub fn client_version() -> String {
    format!(
        "facecaptured/{} ({})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// The value of `faceLivenessData`: plain, or sealed in the envelope (docs/face-data.md).
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum FaceData {
    /// Sealed (`face.encryption = "envelope"`).
    Sealed(Envelope),
    /// In the clear (`face.encryption = "none"`).
    Plain(FaceLivenessData),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_from_jpegs() {
        let p = FaceLivenessData::from_jpegs(
            "hotel2",
            90,
            &[(b"\xff\xd8a", 1.0), (b"\xff\xd8b", 34.5)],
            MetaData::for_terminal("Acme", "alice"),
        );
        let v = serde_json::to_value(&p).expect("json");
        assert_eq!(v["video"]["workflow_data"]["rotation"], 90);
        assert_eq!(
            v["video"]["workflow_data"]["frames"][1]["data"],
            crate::crypto::b64(b"\xff\xd8b")
        );
        assert_eq!(v["video"]["workflow_data"]["frames"][1]["timestamp"], 34.5);
        assert_eq!(
            v["video"]["workflow_data"]["frames"][0]["tags"],
            serde_json::json!([])
        );
        assert_eq!(v["video"]["meta_data"]["username"], "alice");
        let version = v["video"]["meta_data"]["client_version"]
            .as_str()
            .expect("version");
        assert!(
            version.starts_with("facecaptured/0.") && version.ends_with(')'),
            "{version}"
        );
    }
}
