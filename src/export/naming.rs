//! Pure rules of a mailbox export: which inputs StartMailboxExportJob accepts (the
//! botocore model's patterns plus S3's bucket naming rules), where a bucket and
//! prefix land under the export root, and how folders and messages are named
//! inside the zip. No I/O here.

use std::path::{Path, PathBuf};

/// Why an input was refused: the message of an `InvalidParameterException`.
pub type Invalid = String;

/// S3's bucket naming rules (general purpose buckets): 3-63 characters of
/// lowercase letters, digits, dots and hyphens, starting and ending with a letter
/// or digit, no two adjacent dots, not shaped like an IPv4 address, and none of
/// the prefixes and suffixes S3 reserves. The model's own pattern is looser
/// (`[A-Za-z0-9.-]+`, 1-63); S3 would refuse the rest when the job writes, so
/// mailgate refuses it at start.
pub fn check_bucket(name: &str) -> Result<(), Invalid> {
    let bad = |why: &str| {
        Err(format!(
            "S3BucketName {name:?} is not a valid bucket name: {why}"
        ))
    };
    if !(3..=63).contains(&name.len()) {
        return bad("it must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return bad("only lowercase letters, digits, dots and hyphens are allowed");
    }
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !name.bytes().next().is_some_and(edge) || !name.bytes().last().is_some_and(edge) {
        return bad("it must begin and end with a letter or digit");
    }
    if name.contains("..") {
        return bad("it must not contain two adjacent dots");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not be formatted as an IP address");
    }
    const PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];
    const SUFFIXES: &[&str] = &["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];
    if PREFIXES.iter().any(|p| name.starts_with(p)) || SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return bad("it uses a prefix or suffix S3 reserves");
    }
    Ok(())
}

/// The S3Prefix in the form mailgate stores and maps to directories: the model's
/// pattern (`[A-Za-z0-9!_.*'()/-]+`, 1-1023), one trailing `/` dropped, and no
/// component that would leave the bucket's directory or is empty (`..`, `.`, `//`,
/// a leading `/`).
pub fn normalize_prefix(prefix: &str) -> Result<String, Invalid> {
    let bad = |why: &str| Err(format!("S3Prefix {prefix:?} is invalid: {why}"));
    if !(1..=1023).contains(&prefix.len()) {
        return bad("it must be 1 to 1023 characters long");
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!_.*'()/-".contains(&b))
    {
        return bad("only letters, digits and !_.*'()/- are allowed");
    }
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad("empty, '.' and '..' path segments are not allowed");
    }
    Ok(trimmed.to_string())
}

/// ClientToken: 1-128 printable ASCII characters (`[\x21-\x7e]+`).
pub fn check_client_token(token: &str) -> Result<(), Invalid> {
    if (1..=128).contains(&token.len()) && token.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        Ok(())
    } else {
        Err("ClientToken must be 1 to 128 printable ASCII characters".into())
    }
}

/// Description: at most 1023 characters.
pub fn check_description(description: &str) -> Result<(), Invalid> {
    if description.chars().count() <= 1023 {
        Ok(())
    } else {
        Err("Description must be at most 1023 characters".into())
    }
}

/// RoleArn (`service` "iam") and KmsKeyArn (`service` "kms"): the model's
/// pattern `arn:aws:<service>:[a-z0-9-]*:[a-z0-9-]+:[A-Za-z0-9][A-Za-z0-9:_/+=,@.-]{0,1023}`,
/// 20-2048 characters. mailgate keeps them (Describe answers them) but writes
/// unencrypted files to a local directory: there is no IAM or KMS here.
pub fn check_arn(member: &str, service: &str, arn: &str) -> Result<(), Invalid> {
    let ok = (20..=2048).contains(&arn.len())
        && arn
            .strip_prefix("arn:aws:")
            .and_then(|r| r.strip_prefix(service))
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|r| r.split_once(':'))
            .and_then(|(region, r)| {
                let lower = |s: &str| {
                    s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                };
                let (account, resource) = r.split_once(':')?;
                (lower(region) && !account.is_empty() && lower(account)).then_some(resource)
            })
            .is_some_and(|resource| {
                resource.len() <= 1024
                    && resource
                        .bytes()
                        .next()
                        .is_some_and(|b| b.is_ascii_alphanumeric())
                    && resource
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b":_/+=,@.-".contains(&b))
            });
    if ok {
        Ok(())
    } else {
        Err(format!("{member} is not a valid arn:aws:{service} ARN"))
    }
}

/// The directory a bucket and (normalized) prefix map to: `root/bucket/prefix`.
pub fn object_dir(root: &Path, bucket: &str, prefix: &str) -> PathBuf {
    root.join(bucket).join(prefix)
}

/// File name of the finished zip (`<job id>.zip`) in the object directory.
pub fn zip_name(job_id: &str) -> String {
    format!("{job_id}.zip")
}

/// File name of the summary JSON (`<job id>.json`) beside the zip; written last,
/// so its presence means the zip is complete.
pub fn summary_name(job_id: &str) -> String {
    format!("{job_id}.json")
}

/// The hidden name the zip is written under until it is complete: a cancelled,
/// failed or interrupted job never leaves a file named like a finished export.
pub fn temp_zip_name(job_id: &str) -> String {
    format!(".{job_id}.zip.part")
}

/// S3Path as Describe answers it: `bucket/prefix/<job id>.zip`, the "path to the
/// S3 bucket and file" the model describes (its pattern allows no `s3://`).
pub fn s3_path(bucket: &str, prefix: &str, job_id: &str) -> String {
    format!("{bucket}/{prefix}/{}", zip_name(job_id))
}

/// Whether items of a folder of this EWS class are exported: email and calendar
/// items are; contacts, tasks and notes are not (WorkMail counts them as
/// `totalNonExportableItems`).
pub fn exportable(folder_class: &str) -> bool {
    !["IPF.Contact", "IPF.Task", "IPF.StickyNote"]
        .iter()
        .any(|c| folder_class == *c || folder_class.starts_with(&format!("{c}.")))
}

/// A folder's path inside the zip, ending in `/`: the store's `/`-separated name
/// with every segment made safe for unzip tools (no `.`/`..`/empty segments, no
/// backslashes or control characters), so the archive cannot escape the directory
/// it is extracted into.
pub fn folder_entry(folder_name: &str) -> String {
    let mut out = String::with_capacity(folder_name.len() + 1);
    for segment in folder_name.split('/') {
        let safe: String = segment
            .chars()
            .map(|c| if c == '\\' || c.is_control() { '_' } else { c })
            .collect();
        out.push_str(match safe.as_str() {
            "" | "." => "_",
            ".." => "__",
            _ => &safe,
        });
        out.push('/');
    }
    out
}

/// A message's path inside the zip: its folder's path and its UID, zero-padded so
/// that names sort in UID (arrival) order.
pub fn message_entry(folder_entry: &str, uid: u32) -> String {
    format!("{folder_entry}{uid:010}.eml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.2026", "a1b", &"a".repeat(63)] {
            assert!(check_bucket(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "bad_bucket",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "192.168.1.1",
            "xn--abc",
            "sthree-x",
            "amzn-s3-demo-x",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "abc--x-s3",
            "abc--table-s3",
            "a b c",
            "",
        ] {
            assert!(check_bucket(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixes_stay_inside_the_bucket() {
        assert_eq!(normalize_prefix("exports").unwrap(), "exports");
        assert_eq!(normalize_prefix("a/b/").unwrap(), "a/b");
        assert_eq!(normalize_prefix("x.y/(1)!*'-_").unwrap(), "x.y/(1)!*'-_");
        for bad in [
            "", "/", "/a", "a//b", "..", "a/../b", "./a", "a/.", "a b", "a\\b", "a:b", "é",
        ] {
            assert!(normalize_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_prefix(&"a".repeat(1024)).is_err());
    }

    #[test]
    fn tokens_descriptions_and_arns_follow_the_model() {
        assert!(check_client_token("abc-123_!~").is_ok());
        assert!(check_client_token("").is_err());
        assert!(check_client_token("a b").is_err());
        assert!(check_client_token(&"a".repeat(129)).is_err());
        assert!(check_description("").is_ok());
        assert!(check_description(&"é".repeat(1023)).is_ok());
        assert!(check_description(&"a".repeat(1024)).is_err());
        let role = "arn:aws:iam::000000000000:role/export";
        let key = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab";
        assert!(check_arn("RoleArn", "iam", role).is_ok());
        assert!(check_arn("KmsKeyArn", "kms", key).is_ok());
        for bad in [
            key,                                     // wrong service
            "arn:aws:iam::000000000000:",            // empty resource
            "arn:aws:iam:::role/export-role-x",      // empty account
            "arn:aws:iam:US:000000000000:role/x",    // uppercase region
            "arn:aws:iam::000000000000:-role/x",     // resource starts with '-'
            "arn:aws:iam::000000000000:role/a b",    // space
            "arn:aws:iam::0:r",                      // too short
            "arn:aws-cn:iam::000000000000:role/xyz", // other partition
        ] {
            assert!(check_arn("RoleArn", "iam", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn files_land_under_root_bucket_prefix() {
        let root = Path::new("/srv/exports");
        assert_eq!(
            object_dir(root, "bkt", "a/b"),
            PathBuf::from("/srv/exports/bkt/a/b")
        );
        assert_eq!(s3_path("bkt", "a/b", "j-1"), "bkt/a/b/j-1.zip");
        assert_eq!(zip_name("j-1"), "j-1.zip");
        assert_eq!(summary_name("j-1"), "j-1.json");
        assert!(temp_zip_name("j-1").starts_with('.'));
        assert_ne!(temp_zip_name("j-1"), zip_name("j-1"));
    }

    #[test]
    fn mail_and_calendar_are_exported_the_rest_counted() {
        for yes in ["IPF.Note", "IPF.Appointment", "", "IPF.Note.Custom"] {
            assert!(exportable(yes), "{yes}");
        }
        for no in ["IPF.Contact", "IPF.Task", "IPF.StickyNote", "IPF.Contact.X"] {
            assert!(!exportable(no), "{no}");
        }
        assert!(exportable("IPF.Contacts-like"));
    }

    #[test]
    fn entry_names_keep_folders_and_never_escape() {
        assert_eq!(folder_entry("INBOX"), "INBOX/");
        assert_eq!(folder_entry("Archive/2026"), "Archive/2026/");
        assert_eq!(folder_entry("../etc"), "__/etc/");
        assert_eq!(folder_entry("a/./b"), "a/_/b/");
        assert_eq!(folder_entry("a//b"), "a/_/b/");
        assert_eq!(folder_entry("a\\b\u{1}"), "a_b_/");
        assert_eq!(message_entry("INBOX/", 42), "INBOX/0000000042.eml");
    }
}
