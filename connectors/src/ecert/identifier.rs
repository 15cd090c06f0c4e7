//! Certificate identifiers (证照标识) as GB/T 36904 defines them:
//! `1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version: 3 digits>.<check>`. The type code
//! (证照类型代码) is 21 characters: the unified social credit code of the body that defines the
//! kind of certificate and three digits; the issuer code is the issuing body's credit code. The
//! check character (校验位) is ISO 7064 MOD 37,36 over type, issuer, serial and version with the
//! dots left out — not over the root arc, as every published identifier shows.
use std::fmt;
use std::str::FromStr;

/// The fixed arc under which the national e-certificate system names certificates.
pub const ROOT_ARC: &str = "1.2.156.3005.2";

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const MODULUS: u32 = 36;

fn value_of(c: char) -> Option<u32> {
    if c.is_ascii_lowercase() {
        return None;
    }
    c.to_digit(36)
}

/// Runs the MOD 37,36 hybrid recursion over `chars`, returning the running product.
fn product(chars: impl Iterator<Item = char>) -> Result<u32, char> {
    let mut product = MODULUS;
    for c in chars {
        let value = value_of(c).ok_or(c)?;
        let mut sum = (product + value) % MODULUS;
        if sum == 0 {
            sum = MODULUS;
        }
        product = (sum * 2) % (MODULUS + 1);
    }
    Ok(product)
}

/// The ISO 7064 MOD 37,36 check character of `payload` (digits and upper-case letters).
pub fn check_character(payload: &str) -> Result<char, IdentifierError> {
    let product = product(payload.chars()).map_err(IdentifierError::BadCharacter)?;
    let value = (MODULUS + 1 - product) % MODULUS;
    Ok(ALPHABET[value as usize] as char)
}

/// A certificate identifier whose check character is right.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateId {
    pub type_code: String,
    pub issuer_code: String,
    pub serial: String,
    pub version: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("a certificate identifier starts with {ROOT_ARC}")]
    WrongRoot,
    #[error("a certificate identifier has type, issuer, serial, version and check after {ROOT_ARC}")]
    WrongShape,
    #[error("the version is three digits, not {0:?}")]
    BadVersion(String),
    #[error("{0:?} is not a digit or an upper-case letter")]
    BadCharacter(char),
    #[error("the type code is a credit code and three digits (21 characters), not {0:?}")]
    BadTypeCode(String),
    #[error("the issuer code is the issuing body's unified social credit code (18 characters), not {0:?}")]
    BadIssuerCode(String),
    #[error("check character {found} does not match; the identifier was mistyped or altered")]
    CheckMismatch { found: char },
}

impl CertificateId {
    fn payload(&self) -> String {
        format!("{}{}{}{:03}", self.type_code, self.issuer_code, self.serial, self.version)
    }

    pub fn check(&self) -> char {
        check_character(&self.payload()).expect("parts are checked when the identifier is made")
    }

    /// Makes an identifier, refusing parts the check character cannot cover.
    pub fn new(
        type_code: &str,
        issuer_code: &str,
        serial: &str,
        version: u16,
    ) -> Result<CertificateId, IdentifierError> {
        for part in [type_code, issuer_code, serial] {
            if part.is_empty() || part.contains('.') {
                return Err(IdentifierError::WrongShape);
            }
            if let Some(bad) = part.chars().find(|c| value_of(*c).is_none()) {
                return Err(IdentifierError::BadCharacter(bad));
            }
        }
        if version > 999 {
            return Err(IdentifierError::BadVersion(version.to_string()));
        }
        if type_code.len() != 21 || !type_code[18..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentifierError::BadTypeCode(type_code.into()));
        }
        if issuer_code.len() != 18 {
            return Err(IdentifierError::BadIssuerCode(issuer_code.into()));
        }
        Ok(CertificateId {
            type_code: type_code.into(),
            issuer_code: issuer_code.into(),
            serial: serial.into(),
            version,
        })
    }
}

impl fmt::Display for CertificateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ROOT_ARC}.{}.{}.{}.{:03}.{}",
            self.type_code,
            self.issuer_code,
            self.serial,
            self.version,
            self.check()
        )
    }
}

impl FromStr for CertificateId {
    type Err = IdentifierError;

    fn from_str(text: &str) -> Result<CertificateId, IdentifierError> {
        let rest =
            text.strip_prefix(ROOT_ARC).and_then(|rest| rest.strip_prefix('.')).ok_or(IdentifierError::WrongRoot)?;
        let parts: Vec<&str> = rest.split('.').collect();
        let [type_code, issuer_code, serial, version, check] = parts[..] else {
            return Err(IdentifierError::WrongShape);
        };
        if version.len() != 3 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentifierError::BadVersion(version.into()));
        }
        let id = CertificateId::new(type_code, issuer_code, serial, version.parse().expect("three digits"))?;
        let mut check_chars = check.chars();
        let (Some(found), None) = (check_chars.next(), check_chars.next()) else {
            return Err(IdentifierError::WrongShape);
        };
        if found != id.check() {
            return Err(IdentifierError::CheckMismatch { found });
        }
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TYPE: &str = "11100000MB0308302E001";
    const ISSUER: &str = "11610429MB2912345A";

    // Reference values computed with python-stdnum's `stdnum.iso7064.mod_37_36`.
    #[test]
    fn check_characters_match_the_reference_implementation() {
        assert_eq!(check_character("A12425GABC1234002"), Ok('M'));
        assert_eq!(check_character("12156300520000000000000000000001001"), Ok('R'));
        assert_eq!(check_character("A1-"), Err(IdentifierError::BadCharacter('-')));
        assert_eq!(check_character("a1"), Err(IdentifierError::BadCharacter('a')));
    }

    /// Identifiers as published by issuing systems (the first is the example a public client
    /// quotes from the national certificate standard for 建筑施工企业安全生产管理人员考核合格证书):
    /// each holds with the check over type, issuer, serial and version — and each would be
    /// refused if the root arc were counted, as it was before.
    #[test]
    fn published_national_identifiers_hold_their_check_without_the_root_arc() {
        for published in [
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.002.S",
            "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
            "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3",
            "1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
        ] {
            let id: CertificateId = published.parse().unwrap_or_else(|e| panic!("{published}: {e}"));
            assert_eq!(id.to_string(), published);
            let with_root = check_character(&published[..published.len() - 2].replace('.', "")).unwrap();
            assert_ne!(with_root, published.chars().last().unwrap(), "{published}");
        }
    }

    #[test]
    fn identifiers_round_trip_and_carry_their_check() {
        let id = CertificateId::new(TYPE, ISSUER, "202601123000", 1).unwrap();
        let text = id.to_string();
        assert_eq!(text, format!("1.2.156.3005.2.{TYPE}.{ISSUER}.202601123000.001.{}", id.check()));
        assert_eq!(text.parse::<CertificateId>(), Ok(id));
    }

    #[test]
    fn type_codes_are_a_credit_code_and_three_digits_and_issuers_a_credit_code() {
        assert_eq!(
            CertificateId::new("11100611", ISSUER, "1", 1),
            Err(IdentifierError::BadTypeCode("11100611".into())),
            "the eight-digit codes used before"
        );
        assert_eq!(
            CertificateId::new("11100000MB0308302EA01", ISSUER, "1", 1),
            Err(IdentifierError::BadTypeCode("11100000MB0308302EA01".into()))
        );
        assert_eq!(
            CertificateId::new(TYPE, "000000MB1541973G", "1", 1),
            Err(IdentifierError::BadIssuerCode("000000MB1541973G".into()))
        );
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let text = CertificateId::new(TYPE, ISSUER, "202601123000", 1).unwrap().to_string();
        let payload_start = ROOT_ARC.len() + 1;
        let mut caught = 0;
        let mut tried = 0;
        for (position, original) in text.char_indices().filter(|(i, c)| *c != '.' && *i >= payload_start) {
            for replacement in ALPHABET.iter().map(|b| *b as char).filter(|c| c != &original) {
                let mut corrupted = text.clone();
                corrupted.replace_range(position..position + 1, &replacement.to_string());
                tried += 1;
                caught += usize::from(corrupted.parse::<CertificateId>().is_err());
            }
        }
        assert_eq!(caught, tried, "MOD 37,36 catches every single substitution");
        let chars: Vec<char> = text.chars().collect();
        for i in payload_start..chars.len() - 1 {
            if chars[i] != chars[i + 1] && chars[i] != '.' && chars[i + 1] != '.' {
                let mut swapped = chars.clone();
                swapped.swap(i, i + 1);
                let swapped: String = swapped.into_iter().collect();
                assert!(swapped.parse::<CertificateId>().is_err(), "{swapped} passed");
            }
        }
    }

    #[test]
    fn swapped_neighbours_and_bad_shapes_are_refused() {
        let good = CertificateId::new(TYPE, ISSUER, "202601123000", 1).unwrap().to_string();
        let swapped = good.replacen("MB29", "BM29", 1);
        assert!(matches!(swapped.parse::<CertificateId>(), Err(IdentifierError::CheckMismatch { .. })));
        assert_eq!("1.2.156.3005.3.1.2.3.001.X".parse::<CertificateId>(), Err(IdentifierError::WrongRoot));
        assert_eq!("1.2.156.3005.2.1.2.3.01.X".parse::<CertificateId>(), Err(IdentifierError::BadVersion("01".into())));
        assert_eq!("1.2.156.3005.2.1.2.001.X".parse::<CertificateId>(), Err(IdentifierError::WrongShape));
        assert_eq!(good.replace("MB29", "mb29").parse::<CertificateId>(), Err(IdentifierError::BadCharacter('m')));
    }
}
