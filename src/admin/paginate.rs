//! NextToken / MaxResults pagination over a stably ordered list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::ApiError;

/// One page of `items` (already in a stable order) and the token for the next page.
/// `limit` is the model's MaxResults maximum (and the default page size).
pub fn page<T>(
    items: Vec<T>,
    max_results: Option<i64>,
    next_token: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max_results {
        None => limit,
        Some(n) if n >= 1 && n as usize <= limit => n as usize,
        Some(n) => {
            return Err(ApiError::invalid_parameter(format!(
                "MaxResults must be between 1 and {limit}, not {n}"
            )));
        }
    };
    let start = match next_token {
        None => 0,
        Some(t) => decode(t)
            .filter(|&o| o <= items.len())
            .ok_or_else(|| ApiError::invalid_parameter("NextToken is invalid"))?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len()).then(|| encode(end));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

fn encode(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("mg:{offset}"))
}

fn decode(token: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
    std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix("mg:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list_once() {
        let items: Vec<u32> = (0..25).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (p, next) = page(items.clone(), Some(10), token.as_deref(), 100).unwrap();
            seen.extend(p);
            match next {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, items);
        let (all, next) = page(items.clone(), None, None, 100).unwrap();
        assert_eq!((all.len(), next), (25, None));
    }

    #[test]
    fn bad_tokens_and_sizes_are_invalid_parameters() {
        let items: Vec<u32> = (0..5).collect();
        for bad in ["", "zzz", "bWc6OTk5"] {
            let e = page(items.clone(), None, Some(bad), 100).unwrap_err();
            assert_eq!(e.kind, "InvalidParameterException", "{bad}");
        }
        assert!(page(items.clone(), Some(0), None, 100).is_err());
        assert!(page(items.clone(), Some(101), None, 100).is_err());
    }
}
