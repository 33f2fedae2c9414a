//! `EndpointUrl::parse`: whatever it accepts keeps the type's promises and
//! is already in normal form (parsing what it wrote gives it back).
#![no_main]

use herald_core::endpoint_url::{EndpointUrl, MAX_URL_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = EndpointUrl::parse(text) else {
        return;
    };
    let parsed = url.as_url();
    assert!(matches!(parsed.scheme(), "http" | "https"), "{text:?}");
    assert!(parsed.host().is_some(), "{text:?}");
    assert!(
        parsed.username().is_empty() && parsed.password().is_none(),
        "{text:?}"
    );
    assert!(parsed.fragment().is_none(), "{text:?}");
    assert_ne!(parsed.port(), Some(0), "{text:?}");
    assert!(url.as_str().len() <= MAX_URL_LEN, "{text:?}");
    assert_eq!(url.to_string(), url.as_str());

    let again = EndpointUrl::parse(url.as_str())
        .unwrap_or_else(|e| panic!("{text:?} became {:?}, which is refused: {e}", url.as_str()));
    assert_eq!(
        again.as_str(),
        url.as_str(),
        "{text:?} is not normalised in one step"
    );

    // The form stored and returned by the API reads back the same.
    let json = serde_json::to_string(&url).expect("serializes");
    let back: EndpointUrl = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, url);
});
