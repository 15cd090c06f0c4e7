//! Field checks for what applicants and clerks type in. Each error names the field.

/// GB 11643 resident ID number: 17 digits and a MOD 11-2 check character.
pub fn resident_id(number: &str) -> Result<(), String> {
    let bytes = number.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return Err("must be 18 characters: 17 digits and a check character".into());
    }
    let expected = resident_id_check(&number[..17]);
    let given = (bytes[17] as char).to_ascii_uppercase();
    if given != expected {
        return Err(format!("check character is {given}, expected {expected}"));
    }
    Ok(())
}

/// The MOD 11-2 check character for the first 17 digits of a resident ID number.
pub fn resident_id_check(first17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = first17.bytes().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK[(sum % 11) as usize] as char
}

/// Mainland mobile number: 11 digits starting with 1.
pub fn mobile(phone: &str) -> Result<(), String> {
    if phone.len() == 11 && phone.starts_with('1') && phone.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("must be an 11-digit mobile number starting with 1".into())
    }
}

pub fn post_code(code: &str) -> Result<(), String> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("must be 6 digits".into())
    }
}

pub fn not_blank(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_id_checks_the_check_character() {
        // The GB 11643 worked example.
        assert_eq!(resident_id_check("11010519491231002"), 'X');
        assert!(resident_id("11010519491231002X").is_ok());
        assert!(resident_id("11010519491231002x").is_ok());
        assert!(resident_id("110105194912310021").unwrap_err().contains("expected X"));
        assert!(resident_id("1101051949123100").is_err());
        assert!(resident_id("1101051949123100AX").is_err());
    }

    #[test]
    fn phones_and_post_codes() {
        assert!(mobile("13912345678").is_ok());
        assert!(mobile("23912345678").is_err());
        assert!(mobile("1391234567").is_err());
        assert!(post_code("711300").is_ok());
        assert!(post_code("71130").is_err());
        assert!(not_blank("  ").is_err());
    }
}
