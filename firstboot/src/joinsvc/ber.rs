//! BER to DER for PKCS#7 messages: EC2 serves its `rsa2048` signature in BER with indefinite
//! lengths and the content in a constructed OCTET STRING (`MIAGCSqGSIb3DQEHAqCA...`), which the
//! strict DER parser (`der`, under `cms`) refuses. This rewrites exactly those two BER freedoms
//! — indefinite lengths become definite, constructed OCTET STRINGs become one primitive — and
//! keeps everything else byte for byte (the signed attributes, which signers already encode in
//! DER, so the signature over them still checks). The `der` crate has no BER mode, hence this.

/// Nesting deeper than this is refused (PKCS#7 messages nest about 10 levels).
const MAX_DEPTH: usize = 32;

/// `input` with indefinite lengths and constructed OCTET STRINGs rewritten as DER.
pub fn to_der(input: &[u8]) -> Result<Vec<u8>, String> {
    let (out, used) = element(input, 0)?;
    if used != input.len() {
        return Err("trailing bytes after the PKCS#7 message".into());
    }
    Ok(out)
}

/// One element at the start of `input`: its DER and how many input bytes it took.
fn element(input: &[u8], depth: usize) -> Result<(Vec<u8>, usize), String> {
    if depth > MAX_DEPTH {
        return Err("PKCS#7 message nested too deeply".into());
    }
    let short = || "truncated PKCS#7 message".to_owned();
    let tag_len = tag_length(input).ok_or_else(short)?;
    let tag = &input[..tag_len];
    let (length, len_len) = length(&input[tag_len..]).ok_or_else(short)?;
    let start = tag_len + len_len;
    let constructed = tag[0] & 0x20 != 0;
    if !constructed {
        let len = length.ok_or("indefinite length on a primitive element")?;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= input.len())
            .ok_or_else(short)?;
        return Ok((encode(tag, &input[start..end]), end));
    }
    let mut children = Vec::new();
    let mut at = start;
    let end = match length {
        Some(len) => Some(
            start
                .checked_add(len)
                .filter(|e| *e <= input.len())
                .ok_or_else(short)?,
        ),
        None => None,
    };
    loop {
        match end {
            Some(end) if at == end => break,
            None if input.get(at..at + 2) == Some(&[0, 0]) => {
                at += 2;
                break;
            }
            _ => {}
        }
        let limit = end.unwrap_or(input.len());
        let (child, used) = element(&input[at..limit], depth + 1)?;
        children.push(child);
        at += used;
    }
    if tag == [0x24] {
        // A constructed OCTET STRING: one primitive OCTET STRING of its pieces' contents.
        let mut content = Vec::new();
        for child in &children {
            let (_, inner) = split(child).ok_or_else(short)?;
            content.extend_from_slice(inner);
        }
        return Ok((encode(&[0x04], &content), at));
    }
    Ok((encode(tag, &children.concat()), at))
}

/// The length of the identifier octets at the start of `input`.
fn tag_length(input: &[u8]) -> Option<usize> {
    let first = *input.first()?;
    if first & 0x1f != 0x1f {
        return Some(1);
    }
    let more = input[1..].iter().position(|b| b & 0x80 == 0)?;
    Some(more + 2)
}

/// The length octets at the start of `input`: `None` for indefinite, and how many octets.
fn length(input: &[u8]) -> Option<(Option<usize>, usize)> {
    let first = *input.first()?;
    match first {
        0x80 => Some((None, 1)),
        b if b < 0x80 => Some((Some(b.into()), 1)),
        b => {
            let n = usize::from(b & 0x7f);
            if n > 4 || input.len() < 1 + n {
                return None;
            }
            let len = input[1..=n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            Some((Some(len), 1 + n))
        }
    }
}

/// The tag and content of a DER element this module wrote.
fn split(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let t = tag_length(der)?;
    let (len, l) = length(&der[t..])?;
    let start = t + l;
    Some((&der[..t], der.get(start..start + len?)?))
}

/// `tag`, the DER length of `content`, `content`.
fn encode(tag: &[u8], content: &[u8]) -> Vec<u8> {
    let mut out = tag.to_vec();
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indefinite_lengths_and_constructed_strings_become_der() {
        // SEQUENCE (indefinite) { OCTET STRING (constructed, indefinite) { "ab", "c" }, NULL }
        let ber = [
            0x30, 0x80, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c', 0, 0, 0x05, 0, 0, 0,
        ];
        assert_eq!(
            to_der(&ber).unwrap(),
            [0x30, 0x07, 0x04, 0x03, b'a', b'b', b'c', 0x05, 0x00]
        );
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(to_der(&der).unwrap(), der);
        assert!(to_der(&[0x30, 0x80, 0x02, 0x01]).is_err());
        assert!(to_der(&[0x30, 0x05, 0x02]).is_err());
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 40).flatten().collect();
        assert!(to_der(&deep).unwrap_err().contains("deeply") || to_der(&deep).is_err());
        let long = encode(&[0x04], &[7; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
