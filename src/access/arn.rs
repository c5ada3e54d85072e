//! WorkMail organization ARNs, as audit records name organizations and the admin API
//! keys tags: `arn:aws:workmail:{region}:{account}:organization/{org_id}`. Owns only the
//! spelling; `region` and `account` come from the config (`admin.region`, `admin.account`).

/// The ARN of every organization minus its id (`arn:aws:workmail:R:A:organization/`),
/// kept by sessions that append the organization id to it for each audit record.
pub fn org_arn_prefix(region: &str, account: &str) -> String {
    format!("arn:aws:workmail:{region}:{account}:organization/")
}

/// The ARN of one organization.
pub fn org_arn(region: &str, account: &str, org_id: &str) -> String {
    format!("{}{org_id}", org_arn_prefix(region, account))
}

#[cfg(test)]
mod tests {
    #[test]
    fn workmail_spelling() {
        assert_eq!(
            super::org_arn("local", "000000000000", "m-0"),
            "arn:aws:workmail:local:000000000000:organization/m-0"
        );
    }
}
