//! The applicant's review link (好差评: 网上评、扫码评): a link signed for one case, or for one
//! counter visit, so the applicant reviews without an account and nobody reviews another's
//! case. The link is printed as a QR code on the acceptance notice and sent in the review
//! invitation.
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::reference::Reference;

/// Hex characters of the signature a link carries (128 bits).
const TOKEN_HEX: usize = 32;

fn mac(key: &[u8], case_number: &str, visit: Option<&str>) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"review\n");
    mac.update(case_number.as_bytes());
    mac.update(b"\n");
    mac.update(visit.unwrap_or("").as_bytes());
    mac
}

/// The signature of a review link for `case_number` (and a counter `visit`).
pub fn token(key: &[u8], case_number: &str, visit: Option<&str>) -> String {
    hex::encode(&mac(key, case_number, visit).finalize().into_bytes()[..TOKEN_HEX / 2])
}

/// Whether `given` is the signature of the link for `case_number` (and `visit`), compared in
/// constant time.
pub fn verify(key: &[u8], case_number: &str, visit: Option<&str>, given: &str) -> bool {
    let Ok(bytes) = hex::decode(given) else { return false };
    bytes.len() == TOKEN_HEX / 2 && mac(key, case_number, visit).verify_truncated_left(&bytes).is_ok()
}

/// The applicant's review page for `case_number` (and a counter `visit`), signed.
pub fn link(reference: &Reference, case_number: &str, visit: Option<&str>) -> String {
    let token = token(&reference.review_key, case_number, visit);
    match visit {
        Some(visit) => format!("{}/review/{case_number}?visit={visit}&t={token}", reference.public_url),
        None => format!("{}/review/{case_number}?t={token}", reference.public_url),
    }
}

/// The link as a QR code (SVG), for printing on the acceptance notice.
pub fn qr_svg(link: &str) -> String {
    qrcode::QrCode::new(link.as_bytes())
        .map(|code| code.render::<qrcode::render::svg::Color>().min_dimensions(120, 120).build())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_opens_its_own_case_and_visit_only() {
        let key = b"k";
        let case = "61042920261120000001";
        let signed = token(key, case, None);
        assert!(verify(key, case, None, &signed));
        assert!(!verify(key, "61042920261120000002", None, &signed), "another case");
        assert!(!verify(b"other", case, None, &signed), "another key");
        assert!(!verify(key, case, Some("v1"), &signed), "a case link is not a visit's");
        assert!(verify(key, case, Some("v1"), &token(key, case, Some("v1"))));
        assert!(!verify(key, case, None, "zz"), "not hex");
        assert!(!verify(key, case, None, &signed[..8]), "too short");
        let reference = Reference::builtin();
        let link = link(&reference, case, Some("v1"));
        assert!(link.starts_with("http://127.0.0.1:8080/review/61042920261120000001?visit=v1&t="), "{link}");
        assert!(qr_svg(&link).starts_with("<?xml") && qr_svg(&link).contains("<svg"));
    }
}
