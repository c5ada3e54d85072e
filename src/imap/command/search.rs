//! SEARCH / UID SEARCH, with ESEARCH result options (RFC 4731), SEARCHRES SAVE
//! (RFC 5182) and MODSEQ (RFC 7162).

use imap_codec::imap_types::core::{Charset, Vec1};
use imap_codec::imap_types::search::SearchKey;

use super::fetch::structure;
use crate::imap::extended::Extras;
use crate::imap::response::compact_set;
use crate::imap::search::{self, Candidate, Stars};
use crate::imap::searchres;
use crate::imap::session::{Done, Imap, store_failure};

/// Runs a search over the selected folder's messages as the client knows them.
pub async fn search(
    imap: &mut Imap,
    tag: &str,
    charset: Option<&Charset<'_>>,
    criteria: Vec1<SearchKey<'_>>,
    uid: bool,
    extras: &Extras,
) -> Done {
    if let Some(o) = extras
        .search_return
        .iter()
        .flatten()
        .find(|o| !matches!(o.as_str(), "MIN" | "MAX" | "COUNT" | "ALL" | "SAVE"))
    {
        return Done::bad(format!("Unknown RETURN option {o}"));
    }
    // A SEARCH with SAVE that ends in NO leaves `$` empty, one that ends in BAD
    // leaves it as it was (RFC 9051 6.4.4.1, RFC 5182 2.1): past the checks that
    // answer BAD, the earlier result is dropped before anything can answer NO.
    let save = extras.saves();
    if save && let Some(view) = imap.selected.as_mut() {
        view.saved.clear();
    }
    if let Some(cs) = charset {
        let cs = match cs {
            Charset::Atom(a) => a.inner().to_ascii_uppercase(),
            Charset::Quoted(q) => q.inner().to_ascii_uppercase(),
        };
        if cs != "UTF-8" && cs != "US-ASCII" {
            return Done::no("[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
        }
    }
    let mut keys: Vec<SearchKey<'_>> = criteria.into_iter().collect();
    let key = if keys.len() == 1 {
        keys.remove(0)
    } else {
        match Vec1::try_from(keys) {
            Ok(v) => SearchKey::And(v),
            Err(_) => return Done::bad("Empty search"),
        }
    };
    let with_body = search::needs_body(&key);
    let with_modseq = search::uses_modseq(&key);
    let with_sent = search::uses_sent_date(&key);
    if with_modseq {
        imap.enable_condstore();
    }
    let view = imap.selected.as_ref().expect("selected");
    let folder = view.folder.clone();
    let uids = view.uids();
    let recent = view.recent_uids();
    let stars = Stars::new(uids.len() as u32, uids.last().copied().unwrap_or(0), &key);
    let metas = match imap.ctx.store.messages(folder.id, 1, u32::MAX).await {
        Ok(m) => m,
        Err(e) => return store_failure(e),
    };
    let store = imap.ctx.store.clone();
    let mut hits: Vec<u32> = Vec::new();
    let mut hit_uids: Vec<u32> = Vec::new();
    let mut hit_modseqs: Vec<u64> = Vec::new();
    for meta in &metas {
        let Ok(pos) = uids.binary_search(&meta.uid) else {
            continue;
        };
        let raw = if with_body {
            match store.body(meta.body_id).await {
                Ok(b) => Some(b),
                // Expunged by another session since the listing: no match.
                Err(crate::store::StoreError::NotFound(_)) => continue,
                Err(e) => return store_failure(e),
            }
        } else {
            None
        };
        let sent_date = match &raw {
            Some(raw) if with_sent => structure(store.as_ref(), meta.body_id, raw).await.sent_date,
            _ => None,
        };
        let c = Candidate {
            seq: pos as u32 + 1,
            meta,
            raw: raw.as_deref(),
            sent_date,
            recent: recent.contains(&meta.uid),
        };
        if search::eval(&key, &c, &stars) {
            hits.push(if uid { meta.uid } else { pos as u32 + 1 });
            hit_uids.push(meta.uid);
            hit_modseqs.push(meta.modseq);
        }
    }
    if save && let Some(view) = imap.selected.as_mut() {
        view.saved = searchres::to_save(extras.search_return.as_deref().unwrap_or(&[]), &hit_uids);
    }
    // IMAP4rev2 clients get ESEARCH for every SEARCH (RFC 9051 7.3.4); SAVE alone
    // asks for no response at all (RFC 5182 2.4).
    let rev2_all = (imap.rev2 && extras.search_return.is_none()).then(Vec::new);
    if let Some(opts) = extras.search_return.as_ref().or(rev2_all.as_ref()) {
        let opts: Vec<&str> = opts
            .iter()
            .map(String::as_str)
            .filter(|o| *o != "SAVE")
            .collect();
        let opts = match (opts.is_empty(), save) {
            (true, true) => return Done::ok("SEARCH completed, result saved"),
            (true, false) => vec!["ALL"],
            (false, _) => opts,
        };
        let mut line = format!("ESEARCH (TAG {})", crate::imap::response::string(tag));
        if uid {
            line.push_str(" UID");
        }
        for &o in &opts {
            match o {
                "MIN" if !hits.is_empty() => {
                    line.push_str(&format!(" MIN {}", hits.iter().min().unwrap_or(&0)))
                }
                "MAX" if !hits.is_empty() => {
                    line.push_str(&format!(" MAX {}", hits.iter().max().unwrap_or(&0)))
                }
                "COUNT" => line.push_str(&format!(" COUNT {}", hits.len())),
                "ALL" if !hits.is_empty() => line.push_str(&format!(" ALL {}", compact_set(&hits))),
                _ => {}
            }
        }
        if with_modseq && !hits.is_empty() {
            line.push_str(&format!(" MODSEQ {}", esearch_modseq(&opts, &hit_modseqs)));
        }
        imap.untagged(&line);
        return Done::ok("SEARCH completed");
    }
    let mut line = String::from("SEARCH");
    for h in &hits {
        line.push_str(&format!(" {h}"));
    }
    if with_modseq && !hits.is_empty() {
        let highest = hit_modseqs.iter().max().unwrap_or(&0);
        line.push_str(&format!(" (MODSEQ {highest})"));
    }
    imap.untagged(&line);
    Done::ok("SEARCH completed")
}

/// The MODSEQ of an ESEARCH response (RFC 7162 3.1.5): the highest of the
/// messages it reports. With only MIN and/or MAX, those are the first and last
/// hits (hits are in ascending order); with ALL or COUNT, every hit.
fn esearch_modseq(opts: &[&str], hit_modseqs: &[u64]) -> u64 {
    if opts.iter().any(|o| *o == "ALL" || *o == "COUNT") {
        return hit_modseqs.iter().copied().max().unwrap_or(0);
    }
    let min = opts.contains(&"MIN").then(|| hit_modseqs.first()).flatten();
    let max = opts.contains(&"MAX").then(|| hit_modseqs.last()).flatten();
    min.max(max).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::esearch_modseq;

    #[test]
    fn esearch_modseq_is_that_of_the_messages_reported() {
        let modseqs = [6, 8, 7];
        assert_eq!(esearch_modseq(&["MIN"], &modseqs), 6, "the first hit only");
        assert_eq!(esearch_modseq(&["MAX"], &modseqs), 7, "the last hit only");
        assert_eq!(esearch_modseq(&["MIN", "MAX"], &modseqs), 7);
        assert_eq!(esearch_modseq(&["ALL"], &modseqs), 8);
        assert_eq!(esearch_modseq(&["MIN", "COUNT"], &modseqs), 8);
    }
}
