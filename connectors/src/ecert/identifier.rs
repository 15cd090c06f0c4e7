//! Certificate identifiers in the GB/T 36904 style:
//! `1.2.156.3005.2.<type code>.<issuer code>.<serial>.<version: 3 digits>.<check>`, where the check
//! character is ISO 7064 MOD 37,36 over every character before it, dots left out.
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
    #[error("check character {found} does not match; the identifier was mistyped or altered")]
    CheckMismatch { found: char },
}

impl CertificateId {
    fn payload(&self) -> String {
        format!("{ROOT_ARC}.{}.{}.{}.{:03}", self.type_code, self.issuer_code, self.serial, self.version)
            .replace('.', "")
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

    // Reference values computed with python-stdnum's `stdnum.iso7064.mod_37_36`.
    #[test]
    fn check_characters_match_the_reference_implementation() {
        assert_eq!(check_character("A12425GABC1234002"), Ok('M'));
        assert_eq!(check_character("12156300520000000000000000000001001"), Ok('R'));
        assert_eq!(check_character("121563005211100611000000MB1541973G202601123000001"), Ok('6'));
        assert_eq!(check_character("A1-"), Err(IdentifierError::BadCharacter('-')));
        assert_eq!(check_character("a1"), Err(IdentifierError::BadCharacter('a')));
    }

    #[test]
    fn identifiers_round_trip_and_carry_their_check() {
        let id = CertificateId::new("11100611", "000000MB1541973G", "202601123000", 1).unwrap();
        let text = id.to_string();
        assert_eq!(text, "1.2.156.3005.2.11100611.000000MB1541973G.202601123000.001.6");
        assert_eq!(text.parse::<CertificateId>(), Ok(id));
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let text = CertificateId::new("11100611", "000000MB1541973G", "202601123000", 1).unwrap().to_string();
        let mut caught = 0;
        let mut tried = 0;
        for (position, original) in text.char_indices().filter(|(_, c)| *c != '.') {
            for replacement in ALPHABET.iter().map(|b| *b as char).filter(|c| c != &original) {
                let mut corrupted = text.clone();
                corrupted.replace_range(position..position + 1, &replacement.to_string());
                tried += 1;
                caught += usize::from(corrupted.parse::<CertificateId>().is_err());
            }
        }
        assert_eq!(caught, tried, "MOD 37,36 catches every single substitution");
        let chars: Vec<char> = text.chars().collect();
        for i in 0..chars.len() - 1 {
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
        let good = "1.2.156.3005.2.11100611.000000MB1541973G.202601123000.001.6";
        let swapped = good.replacen("MB15", "BM15", 1);
        assert!(matches!(swapped.parse::<CertificateId>(), Err(IdentifierError::CheckMismatch { .. })));
        assert_eq!("1.2.156.3005.3.1.2.3.001.X".parse::<CertificateId>(), Err(IdentifierError::WrongRoot));
        assert_eq!("1.2.156.3005.2.1.2.3.01.X".parse::<CertificateId>(), Err(IdentifierError::BadVersion("01".into())));
        assert_eq!("1.2.156.3005.2.1.2.001.X".parse::<CertificateId>(), Err(IdentifierError::WrongShape));
        assert_eq!(good.replace("MB", "mb").parse::<CertificateId>(), Err(IdentifierError::BadCharacter('m')));
    }
}
