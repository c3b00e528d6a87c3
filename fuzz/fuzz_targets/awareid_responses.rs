//! Every AwareID response body the client reads, parsed as the client parses it
//! (serde_json into the wire types). Byte 0 picks the type; the rest is the body.
#![no_main]

use facecapture::awareid::wire::*;
use libfuzzer_sys::fuzz_target;

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) {
    let _ = serde_json::from_slice::<T>(body);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 10 {
        0 => parse::<TokenResponse>(body),
        1 => parse::<EnrollResponse>(body),
        2 => parse::<AddDeviceResponse>(body),
        3 => parse::<AddFaceResponse>(body),
        4 => parse::<AuthenticateResponse>(body),
        5 => parse::<VerifyDeviceResponse>(body),
        6 => parse::<VerifyFaceResponse>(body),
        7 => parse::<ValidateSessionResponse>(body),
        8 => parse::<TriggerResponse>(body),
        _ => parse::<ErrorBody>(body),
    }
});
