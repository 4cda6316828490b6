//! The IAM policy evaluator's tests: the IAM User Guide's examples, each citing its page.

use serde_json::json;

use super::Decision::{Allow, ExplicitDeny, ImplicitDeny};
use super::*;

const SESSION: &str =
    "arn:aws:bedrock:us-east-1:111111111111:session/6f5a3e1c-0d7b-4a8e-9c2f-1b2c3d4e5f60";

fn policy(doc: Value) -> Policy {
    Policy::parse(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"))
}

fn parse_error(doc: Value) -> String {
    Policy::parse(&doc).expect_err("the document should be refused")
}

fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut ctx = Context::new();
    for (key, value) in pairs {
        ctx.set(key, *value);
    }
    ctx
}

fn tag_keys(keys: &[&str]) -> Context {
    let mut ctx = Context::new();
    ctx.set_many("aws:TagKeys", keys.iter().map(|k| k.to_string()).collect());
    ctx
}

fn allow_all() -> Policy {
    policy(
        json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}),
    )
}

/// "Policy evaluation logic": an explicit deny in any policy overrides any allow; with neither, the
/// request is implicitly denied.
#[test]
fn an_explicit_deny_beats_an_allow() {
    let allow = policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "bedrock:*", "Resource": "*"}
    }));
    let deny = policy(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "NoDeletes",
            "Effect": "Deny",
            "Action": ["bedrock:DeleteSession", "bedrock:EndSession"],
            "Resource": "*"
        }]
    }));
    let none = Context::new();
    let both = [allow.clone(), deny.clone()];
    assert_eq!(
        evaluate(&both, "bedrock:DeleteSession", SESSION, &none),
        ExplicitDeny
    );
    assert_eq!(
        evaluate(&[deny.clone(), allow], "bedrock:EndSession", SESSION, &none),
        ExplicitDeny
    );
    assert_eq!(evaluate(&both, "bedrock:GetSession", SESSION, &none), Allow);
    assert_eq!(
        evaluate(&[deny], "bedrock:GetSession", SESSION, &none),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&[], "bedrock:GetSession", SESSION, &none),
        ImplicitDeny
    );
}

/// "IAM JSON policy elements: NotAction": "allows users to access every action in every AWS service
/// except for IAM", and the same adapted to Bedrock's session API.
#[test]
fn not_action_allows_everything_else() {
    let no_iam = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    }))];
    let none = Context::new();
    let decide = |action: &str, resource: &str| evaluate(&no_iam, action, resource, &none);
    assert_eq!(decide("bedrock:GetSession", SESSION), Allow);
    assert_eq!(decide("bedrock:ListSessions", "*"), Allow);
    assert_eq!(decide("iam:CreateUser", "*"), ImplicitDeny);

    let no_deletes = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "NotAction": ["bedrock:Delete*", "bedrock:Untag*"],
            "Resource": "*"
        }
    }))];
    let decide = |action: &str| evaluate(&no_deletes, action, SESSION, &none);
    assert_eq!(decide("bedrock:PutInvocationStep"), Allow);
    assert_eq!(decide("bedrock:DeleteSession"), ImplicitDeny);
    assert_eq!(decide("bedrock:UntagResource"), ImplicitDeny);
}

/// "IAM JSON policy elements: NotAction", NotAction with Deny: deny every non-IAM action to a user not
/// signed in with MFA (`BoolIfExists`, so a missing key denies too).
#[test]
fn not_action_with_deny_and_bool_if_exists() {
    let deny = policy(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyAllUsersNotUsingMFA",
            "Effect": "Deny",
            "NotAction": "iam:*",
            "Resource": "*",
            "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
        }]
    }));
    let policies = [allow_all(), deny];
    let no_mfa = ctx(&[("aws:MultiFactorAuthPresent", "false")]);
    let mfa = ctx(&[("aws:MultiFactorAuthPresent", "true")]);
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &no_mfa),
        ExplicitDeny
    );
    assert_eq!(
        evaluate(&policies, "iam:ChangePassword", "*", &no_mfa),
        Allow
    );
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &mfa),
        Allow
    );
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &Context::new()),
        ExplicitDeny
    );
}

/// "IAM JSON policy elements: NotResource": the HRPayroll group is denied every S3 resource except the
/// Payroll folder (another policy allows).
#[test]
fn not_resource_denies_everything_else() {
    let deny = policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": "s3:*",
            "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]
        }
    }));
    let policies = [allow_all(), deny];
    let none = Context::new();
    assert_eq!(
        evaluate(
            &policies,
            "s3:GetObject",
            "arn:aws:s3:::HRBucket/Payroll/jan.csv",
            &none
        ),
        Allow
    );
    assert_eq!(
        evaluate(
            &policies,
            "s3:ListBucket",
            "arn:aws:s3:::HRBucket/Payroll",
            &none
        ),
        Allow
    );
    assert_eq!(
        evaluate(
            &policies,
            "s3:GetObject",
            "arn:aws:s3:::HRBucket/Bonus/jan.csv",
            &none
        ),
        ExplicitDeny
    );
    // Only the statement's actions are concerned.
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &none),
        Allow
    );

    // Adapted: only sessions. An action without a resource ("*") is no session, so it is denied too.
    let sessions_only = policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": "bedrock:*",
            "NotResource": "arn:aws:bedrock:us-east-1:111111111111:session/*"
        }
    }));
    let policies = [allow_all(), sessions_only];
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &none),
        Allow
    );
    let elsewhere = "arn:aws:bedrock:eu-west-1:111111111111:session/abc";
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", elsewhere, &none),
        ExplicitDeny
    );
    assert_eq!(
        evaluate(&policies, "bedrock:ListSessions", "*", &none),
        ExplicitDeny
    );
}

/// "Controlling access to AWS resources using tags", controlling tag keys: create and tag only with the
/// keys `environment` or `cost-center` (`ForAllValues:StringEquals` on `aws:TagKeys`), and the pitfall of
/// "Multivalued context key examples": `ForAllValues` is also true with no keys at all, unless a
/// `Null: false` check guards it.
#[test]
fn for_all_values_allows_only_the_listed_tag_keys() {
    let allowed_keys = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": ["bedrock:CreateSession", "bedrock:TagResource"],
            "Resource": "*",
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
        }
    }))];
    let decide = |ctx: &Context| evaluate(&allowed_keys, "bedrock:TagResource", SESSION, ctx);
    assert_eq!(decide(&tag_keys(&["environment"])), Allow);
    assert_eq!(decide(&tag_keys(&["environment", "cost-center"])), Allow);
    assert_eq!(decide(&tag_keys(&["environment", "owner"])), ImplicitDeny);
    assert_eq!(
        decide(&tag_keys(&["Environment"])),
        ImplicitDeny,
        "values are case-sensitive"
    );
    assert_eq!(decide(&tag_keys(&[])), Allow, "the empty-set pitfall");
    assert_eq!(decide(&Context::new()), Allow, "the missing-key pitfall");

    let guarded = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "bedrock:TagResource",
            "Resource": "*",
            "Condition": {
                "Null": {"aws:TagKeys": "false"},
                "ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}
            }
        }
    }))];
    let decide = |ctx: &Context| evaluate(&guarded, "bedrock:TagResource", SESSION, ctx);
    assert_eq!(decide(&tag_keys(&["cost-center"])), Allow);
    assert_eq!(decide(&tag_keys(&["owner"])), ImplicitDeny);
    assert_eq!(decide(&tag_keys(&[])), ImplicitDeny);
    assert_eq!(decide(&Context::new()), ImplicitDeny);
}

/// "Multivalued context key examples", "Deny a single policy condition value for a multivalued context
/// key": `ForAllValues:StringNotLike` on `aws:TagKeys` with `key1*`, the rows of the page's table.
#[test]
fn for_all_values_with_a_negated_operator() {
    let deny = policy(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyRestrictedTags",
            "Effect": "Deny",
            "Action": ["bedrock:Tag*", "bedrock:Untag*"],
            "Resource": ["*"],
            "Condition": {"ForAllValues:StringNotLike": {"aws:TagKeys": "key1*"}}
        }]
    }));
    let policies = [allow_all(), deny];
    let decide = |ctx: &Context| evaluate(&policies, "bedrock:TagResource", SESSION, ctx);
    assert_eq!(decide(&tag_keys(&["key1:legal"])), Allow);
    assert_eq!(decide(&tag_keys(&["key1:hr", "key1:personnel"])), Allow);
    assert_eq!(decide(&tag_keys(&["key2:audit"])), ExplicitDeny);
    assert_eq!(decide(&tag_keys(&["key1:hr", "key2:audit"])), Allow);
    assert_eq!(decide(&Context::new()), ExplicitDeny);
}

/// "Multivalued context key examples", "Deny policy with condition set operator ForAnyValue": deny when
/// any of the request's tag keys is `environment` or `webserver` (adapted from EC2 snapshots).
#[test]
fn for_any_value_denies_when_one_key_matches() {
    let deny = policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": "bedrock:TagResource",
            "Resource": "*",
            "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["webserver", "environment"]}}
        }
    }));
    let policies = [allow_all(), deny];
    let decide = |ctx: &Context| evaluate(&policies, "bedrock:TagResource", SESSION, ctx);
    assert_eq!(decide(&tag_keys(&["owner", "environment"])), ExplicitDeny);
    assert_eq!(decide(&tag_keys(&["webserver"])), ExplicitDeny);
    assert_eq!(decide(&tag_keys(&["owner"])), Allow);
    assert_eq!(
        decide(&tag_keys(&[])),
        Allow,
        "ForAnyValue is false on an empty set"
    );
    assert_eq!(
        decide(&Context::new()),
        Allow,
        "ForAnyValue is false on a missing key"
    );
}

/// "IAM JSON policy elements: Condition operators", `...IfExists`: with the key present the check is
/// made; without it the condition is true (where the plain operator is false).
#[test]
fn if_exists_is_true_when_the_key_is_missing() {
    let doc = |operator: &str| {
        policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "bedrock:CreateSession",
                "Resource": "*",
                "Condition": {operator: {"aws:RequestTag/tenant": "${aws:PrincipalTag/tenant}"}}
            }
        }))
    };
    let if_exists = [doc("StringEqualsIfExists")];
    let plain = [doc("StringEquals")];
    let blue = ctx(&[("aws:PrincipalTag/tenant", "blue")]);
    let blue_asks_blue = ctx(&[
        ("aws:PrincipalTag/tenant", "blue"),
        ("aws:RequestTag/tenant", "blue"),
    ]);
    let blue_asks_red = ctx(&[
        ("aws:PrincipalTag/tenant", "blue"),
        ("aws:RequestTag/tenant", "red"),
    ]);
    assert_eq!(
        evaluate(&if_exists, "bedrock:CreateSession", "*", &blue),
        Allow
    );
    assert_eq!(
        evaluate(&if_exists, "bedrock:CreateSession", "*", &blue_asks_blue),
        Allow
    );
    assert_eq!(
        evaluate(&if_exists, "bedrock:CreateSession", "*", &blue_asks_red),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&plain, "bedrock:CreateSession", "*", &blue),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&plain, "bedrock:CreateSession", "*", &blue_asks_blue),
        Allow
    );
}

/// "IAM JSON policy elements: Condition operators", "Condition operator to check existence of condition
/// keys": `Null: true` allows only requests without temporary credentials (no `aws:TokenIssueTime`).
#[test]
fn null_checks_whether_the_key_is_absent() {
    let doc = |absent: &str| {
        [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Action": "bedrock:*",
                "Effect": "Allow",
                "Resource": "*",
                "Condition": {"Null": {"aws:TokenIssueTime": absent}}
            }
        }))]
    };
    let temporary = ctx(&[("aws:TokenIssueTime", "2024-05-01T12:00:00Z")]);
    let long_term = Context::new();
    assert_eq!(
        evaluate(&doc("true"), "bedrock:GetSession", SESSION, &long_term),
        Allow
    );
    assert_eq!(
        evaluate(&doc("true"), "bedrock:GetSession", SESSION, &temporary),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&doc("false"), "bedrock:GetSession", SESSION, &temporary),
        Allow
    );
    assert_eq!(
        evaluate(&doc("false"), "bedrock:GetSession", SESSION, &long_term),
        ImplicitDeny
    );
}

/// "IAM JSON policy elements: Condition operators" (a negated operator with a missing key is true) and
/// "Conditions with multiple context keys or values" (a negated operator's values are NORed).
#[test]
fn string_not_equals_with_a_missing_key_and_several_values() {
    let doc = |operator: &str| {
        policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Deny",
                "Action": "bedrock:*",
                "Resource": "*",
                "Condition": {operator: {"aws:RequestedRegion": ["us-east-1", "us-west-2"]}}
            }
        }))
    };
    let policies = [allow_all(), doc("StringNotEquals")];
    let decide = |region: Option<&str>| {
        let ctx = region.map_or_else(Context::new, |r| ctx(&[("aws:RequestedRegion", r)]));
        evaluate(&policies, "bedrock:GetSession", SESSION, &ctx)
    };
    assert_eq!(decide(Some("us-east-1")), Allow);
    assert_eq!(decide(Some("us-west-2")), Allow);
    assert_eq!(decide(Some("eu-west-1")), ExplicitDeny);
    assert_eq!(decide(None), ExplicitDeny);
    // "...IfExists": with a Deny and a negated operator the request is still denied if the key is missing.
    let if_exists = [allow_all(), doc("StringNotEqualsIfExists")];
    assert_eq!(
        evaluate(&if_exists, "bedrock:GetSession", SESSION, &Context::new()),
        ExplicitDeny
    );
}

/// "IAM tutorial: Define permissions to access AWS resources based on tags": the access-same-project-team
/// policy (Secrets Manager there, Bedrock sessions here), principal tags compared with resource tags
/// through `${aws:PrincipalTag/...}` variables.
#[test]
fn abac_principal_tags_must_match_resource_tags() {
    let abac = [policy(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllActionsBedrockSameProjectSameTeam",
            "Effect": "Allow",
            "Action": "bedrock:*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "aws:ResourceTag/access-project": "${aws:PrincipalTag/access-project}",
                    "aws:ResourceTag/access-team": "${aws:PrincipalTag/access-team}",
                    "aws:ResourceTag/cost-center": "${aws:PrincipalTag/cost-center}"
                },
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["access-project", "access-team", "cost-center", "Name", "OwnedBy"]
                },
                "StringEqualsIfExists": {
                    "aws:RequestTag/access-project": "${aws:PrincipalTag/access-project}",
                    "aws:RequestTag/access-team": "${aws:PrincipalTag/access-team}",
                    "aws:RequestTag/cost-center": "${aws:PrincipalTag/cost-center}"
                }
            }
        }]
    }))];
    let principal = [
        ("aws:PrincipalTag/access-project", "peg"),
        ("aws:PrincipalTag/access-team", "eng"),
        ("aws:PrincipalTag/cost-center", "987654"),
    ];
    let resource = [
        ("aws:ResourceTag/access-project", "peg"),
        ("aws:ResourceTag/access-team", "eng"),
        ("aws:ResourceTag/cost-center", "987654"),
    ];
    let same = ctx(&[principal.as_slice(), &resource].concat());
    assert_eq!(evaluate(&abac, "bedrock:GetSession", SESSION, &same), Allow);

    let other_team = ctx(&[
        principal.as_slice(),
        &resource,
        &[("aws:ResourceTag/access-team", "qas")],
    ]
    .concat());
    assert_eq!(
        evaluate(&abac, "bedrock:GetSession", SESSION, &other_team),
        ImplicitDeny
    );

    let untagged_resource = ctx(&[principal.as_slice(), &resource[..2]].concat());
    assert_eq!(
        evaluate(&abac, "bedrock:GetSession", SESSION, &untagged_resource),
        ImplicitDeny
    );

    // A principal without the tag: the variable has no value, so nothing equals it.
    let untagged_principal = ctx(&[&principal[..2], resource.as_slice()].concat());
    assert_eq!(
        evaluate(&abac, "bedrock:GetSession", SESSION, &untagged_principal),
        ImplicitDeny
    );

    let mut tagging = ctx(&[
        principal.as_slice(),
        &resource,
        &[("aws:RequestTag/access-project", "peg")],
    ]
    .concat());
    tagging.set_many("aws:TagKeys", vec!["access-project".into(), "Name".into()]);
    assert_eq!(
        evaluate(&abac, "bedrock:TagResource", SESSION, &tagging),
        Allow
    );
    tagging.set("aws:RequestTag/access-project", "uni");
    assert_eq!(
        evaluate(&abac, "bedrock:TagResource", SESSION, &tagging),
        ImplicitDeny
    );
    tagging.set("aws:RequestTag/access-project", "peg");
    tagging.set_many("aws:TagKeys", vec!["access-project".into(), "Owner".into()]);
    assert_eq!(
        evaluate(&abac, "bedrock:TagResource", SESSION, &tagging),
        ImplicitDeny
    );
}

/// The same with one tenant tag, its key written in another case ("IAM policy elements: Variables and
/// tags": key names are case-insensitive).
#[test]
fn abac_tenant_tag() {
    let tenant = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": ["bedrock:GetSession", "bedrock:UpdateSession"],
            "Resource": "arn:aws:bedrock:*:111111111111:session/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/tenant": "${aws:principaltag/Tenant}"}}
        }
    }))];
    let acme = ctx(&[
        ("aws:PrincipalTag/tenant", "acme"),
        ("aws:ResourceTag/Tenant", "acme"),
    ]);
    let other = ctx(&[
        ("aws:PrincipalTag/tenant", "acme"),
        ("aws:ResourceTag/tenant", "globex"),
    ]);
    assert_eq!(
        evaluate(&tenant, "bedrock:GetSession", SESSION, &acme),
        Allow
    );
    assert_eq!(
        evaluate(&tenant, "bedrock:GetSession", SESSION, &other),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&tenant, "bedrock:DeleteSession", SESSION, &acme),
        ImplicitDeny
    );
}

/// "IAM policy elements: Variables and tags": each user manages their own access keys,
/// `arn:aws:iam::account-id:user/${aws:username}`.
#[test]
fn username_variable_in_a_resource() {
    let own_keys = [policy(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Action": ["iam:*AccessKey*"],
            "Effect": "Allow",
            "Resource": ["arn:aws:iam::111111111111:user/${aws:username}"]
        }]
    }))];
    let david = ctx(&[("aws:username", "David")]);
    let user = |name: &str| format!("arn:aws:iam::111111111111:user/{name}");
    assert_eq!(
        evaluate(&own_keys, "iam:CreateAccessKey", &user("David"), &david),
        Allow
    );
    assert_eq!(
        evaluate(&own_keys, "iam:ListAccessKeys", &user("David"), &david),
        Allow
    );
    assert_eq!(
        evaluate(&own_keys, "iam:CreateAccessKey", &user("Adele"), &david),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&own_keys, "iam:GetUser", &user("David"), &david),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(
            &own_keys,
            "iam:CreateAccessKey",
            &user("David"),
            &Context::new()
        ),
        ImplicitDeny
    );
    // A variable without a value is not an empty string: the resource containing it matches nothing.
    assert_eq!(
        evaluate(&own_keys, "iam:CreateAccessKey", &user(""), &Context::new()),
        ImplicitDeny
    );
}

/// "IAM policy elements: Variables and tags": without `"Version": "2012-10-17"` (absent, or 2008-10-17),
/// `${aws:username}` is a literal string.
#[test]
fn older_versions_have_no_variables() {
    for version in [None, Some("2008-10-17")] {
        let mut doc = json!({
            "Statement": {"Action": "iam:*AccessKey*", "Effect": "Allow", "Resource": "arn:aws:iam::111111111111:user/${aws:username}"}
        });
        if let Some(version) = version {
            doc["Version"] = json!(version);
        }
        let literal = [policy(doc)];
        let david = ctx(&[("aws:username", "David")]);
        let named = "arn:aws:iam::111111111111:user/David";
        let verbatim = "arn:aws:iam::111111111111:user/${aws:username}";
        assert_eq!(
            evaluate(&literal, "iam:CreateAccessKey", named, &david),
            ImplicitDeny
        );
        assert_eq!(
            evaluate(&literal, "iam:CreateAccessKey", verbatim, &david),
            Allow
        );
    }
    // An unterminated variable is refused only where variables exist.
    let unterminated = |version: &str| json!({"Version": version, "Statement": {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b/${aws:username"}});
    assert!(parse_error(unterminated("2012-10-17")).contains("unterminated policy variable"));
    assert!(Policy::parse(&unterminated("2008-10-17")).is_ok());
}

/// "IAM policy elements: Variables and tags", "Specifying default values": `${key, 'default'}` stands in
/// when the key has no value.
#[test]
fn variable_default_values() {
    let team_folder = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::amzn-s3-demo-bucket/${aws:PrincipalTag/team, 'company-wide'}/*"
        }
    }))];
    let blue = ctx(&[("aws:PrincipalTag/team", "blue")]);
    let object = |folder: &str| format!("arn:aws:s3:::amzn-s3-demo-bucket/{folder}/report.pdf");
    assert_eq!(
        evaluate(&team_folder, "s3:GetObject", &object("blue"), &blue),
        Allow
    );
    assert_eq!(
        evaluate(&team_folder, "s3:GetObject", &object("company-wide"), &blue),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(
            &team_folder,
            "s3:GetObject",
            &object("company-wide"),
            &Context::new()
        ),
        Allow
    );
    assert_eq!(
        evaluate(
            &team_folder,
            "s3:GetObject",
            &object("blue"),
            &Context::new()
        ),
        ImplicitDeny
    );
}

/// "IAM policy elements: Variables and tags", "Special characters": `${*}`, `${?}` and `${$}` stand for
/// the characters themselves, not wildcards.
#[test]
fn special_character_variables() {
    let doc = |version: &str| {
        [policy(json!({
            "Version": version,
            "Statement": {
                "Effect": "Allow",
                "Action": "bedrock:CreateSession",
                "Resource": "*",
                "Condition": {"StringLike": {"aws:RequestTag/pattern": "a${*}b${?}${$}*"}}
            }
        }))]
    };
    let decide = |version: &str, value: &str| {
        evaluate(
            &doc(version),
            "bedrock:CreateSession",
            "*",
            &ctx(&[("aws:RequestTag/pattern", value)]),
        )
    };
    assert_eq!(decide("2012-10-17", "a*b?$"), Allow);
    assert_eq!(decide("2012-10-17", "a*b?$ and more"), Allow);
    assert_eq!(decide("2012-10-17", "axbx$"), ImplicitDeny);
    assert_eq!(
        decide("2008-10-17", "a${xyz}b${x}${$}!"),
        Allow,
        "literal text with wildcards"
    );
    assert_eq!(decide("2008-10-17", "a*b?$"), ImplicitDeny);
}

/// "IAM policy elements: Variables and tags", introduction: `StringLike` on `s3:prefix` with `David/*`
/// and `${aws:username}/*`; `*` spans `/`, `?` is one character, matching is case-sensitive.
#[test]
fn string_like_wildcards() {
    let doc = |prefix: &str| {
        [policy(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Action": ["s3:ListBucket"],
                "Effect": "Allow",
                "Resource": ["arn:aws:s3:::mybucket"],
                "Condition": {"StringLike": {"s3:prefix": [prefix]}}
            }]
        }))]
    };
    let decide = |policies: &[Policy], prefix: &str| {
        let ctx = ctx(&[("s3:prefix", prefix), ("aws:username", "David")]);
        evaluate(policies, "s3:ListBucket", "arn:aws:s3:::mybucket", &ctx)
    };
    for policies in [doc("David/*"), doc("${aws:username}/*")] {
        assert_eq!(decide(&policies, "David/"), Allow);
        assert_eq!(decide(&policies, "David/docs/2024/a.txt"), Allow);
        assert_eq!(decide(&policies, "Dave/"), ImplicitDeny);
        assert_eq!(decide(&policies, "david/"), ImplicitDeny);
    }
    let one_char = doc("home/?");
    assert_eq!(decide(&one_char, "home/a"), Allow);
    assert_eq!(decide(&one_char, "home/ab"), ImplicitDeny);
    assert_eq!(decide(&one_char, "home/"), ImplicitDeny);
}

/// "IAM JSON policy elements: Condition operators", string operators: `StringEqualsIgnoreCase` and its
/// negation; operator names themselves are read without regard to case.
#[test]
fn string_equals_ignore_case() {
    let doc = |operator: &str| {
        [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "bedrock:CreateSession",
                "Resource": "*",
                "Condition": {operator: {"aws:RequestTag/stage": ["Prod", "staging"]}}
            }
        }))]
    };
    let decide = |policies: &[Policy], stage: &str| {
        evaluate(
            policies,
            "bedrock:CreateSession",
            "*",
            &ctx(&[("aws:RequestTag/stage", stage)]),
        )
    };
    for operator in ["StringEqualsIgnoreCase", "stringequalsignorecase"] {
        assert_eq!(decide(&doc(operator), "PROD"), Allow);
        assert_eq!(decide(&doc(operator), "Staging"), Allow);
        assert_eq!(decide(&doc(operator), "dev"), ImplicitDeny);
    }
    assert_eq!(decide(&doc("StringEquals"), "PROD"), ImplicitDeny);
    assert_eq!(
        decide(&doc("StringNotEqualsIgnoreCase"), "PROD"),
        ImplicitDeny
    );
    assert_eq!(decide(&doc("StringNotEqualsIgnoreCase"), "dev"), Allow);
}

/// "IAM JSON policy elements: Condition operators", ARN operators: `StringLike` lets `*` cross colons,
/// `ArnLike` matches each of the six colon-separated parts separately.
#[test]
fn arn_like_matches_each_part() {
    let doc = |operator: &str| {
        [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "bedrock:GetSession",
                "Resource": "*",
                "Condition": {operator: {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}}
            }
        }))]
    };
    let tricky = ctx(&[(
        "aws:SourceArn",
        "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt",
    )]);
    let plain = ctx(&[(
        "aws:SourceArn",
        "arn:aws:someservice:us-east-2:111122223333:finance/document.txt",
    )]);
    assert_eq!(
        evaluate(&doc("StringLike"), "bedrock:GetSession", SESSION, &tricky),
        Allow
    );
    assert_eq!(
        evaluate(&doc("ArnLike"), "bedrock:GetSession", SESSION, &tricky),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&doc("ArnEquals"), "bedrock:GetSession", SESSION, &plain),
        Allow
    );
    assert_eq!(
        evaluate(&doc("ArnNotLike"), "bedrock:GetSession", SESSION, &plain),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&doc("ArnNotLike"), "bedrock:GetSession", SESSION, &tricky),
        Allow
    );
    let not_an_arn = ctx(&[("aws:SourceArn", "finance/document.txt")]);
    assert_eq!(
        evaluate(&doc("ArnLike"), "bedrock:GetSession", SESSION, &not_an_arn),
        ImplicitDeny
    );
}

/// "IAM JSON policy elements: Condition operators", Boolean condition operators: deny when the request
/// is not over TLS (`aws:SecureTransport` "false", or JSON `false`).
#[test]
fn bool_operator() {
    for value in [json!("false"), json!(false)] {
        let deny = policy(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Sid": "BooleanExample",
                "Action": "bedrock:*",
                "Effect": "Deny",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": value}}
            }]
        }));
        let policies = [allow_all(), deny];
        let decide = |ctx: &Context| evaluate(&policies, "bedrock:GetSession", SESSION, ctx);
        assert_eq!(
            decide(&ctx(&[("aws:SecureTransport", "false")])),
            ExplicitDeny
        );
        assert_eq!(decide(&ctx(&[("aws:SecureTransport", "true")])), Allow);
        assert_eq!(decide(&ctx(&[("aws:SecureTransport", "maybe")])), Allow);
        assert_eq!(decide(&Context::new()), Allow);
    }
}

/// "IAM JSON policy elements: Action" (prefix and action name are case-insensitive) and "IAM policy
/// elements: Variables and tags" (condition key names are case-insensitive: `aws:CurrentTime` is
/// `AWS:currenttime`); resource ARNs stay case-sensitive.
#[test]
fn names_are_case_insensitive_but_arns_are_not() {
    let policies = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": ["Bedrock:getsession", "BEDROCK:List*"],
            "Resource": ["arn:aws:bedrock:us-east-1:111111111111:session/ABC", "*"],
            "Condition": {"StringEquals": {"AWS:username": "alice", "aws:ResourceTag/Owner": "${AWS:Username}"}}
        }
    }))];
    let alice = ctx(&[
        ("aws:UserName", "alice"),
        ("aws:resourcetag/owner", "alice"),
    ]);
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &alice),
        Allow
    );
    assert_eq!(
        evaluate(&policies, "bedrock:ListInvocationSteps", SESSION, &alice),
        Allow
    );
    assert_eq!(
        evaluate(&policies, "bedrock:GetInvocationStep", SESSION, &alice),
        ImplicitDeny
    );
    let bob = ctx(&[
        ("aws:username", "Alice"),
        ("aws:ResourceTag/Owner", "Alice"),
    ]);
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &bob),
        ImplicitDeny,
        "values keep their case"
    );
    assert_eq!(
        alice.get("AWS:USERNAME"),
        Some(["alice".to_string()].as_slice())
    );

    let exact = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "bedrock:GetSession", "Resource": "arn:aws:bedrock:us-east-1:111111111111:session/ABC"}
    }))];
    let upper = "arn:aws:bedrock:us-east-1:111111111111:session/ABC";
    let lower = "arn:aws:bedrock:us-east-1:111111111111:session/abc";
    assert_eq!(
        evaluate(&exact, "bedrock:GetSession", upper, &Context::new()),
        Allow
    );
    assert_eq!(
        evaluate(&exact, "bedrock:GetSession", lower, &Context::new()),
        ImplicitDeny
    );
}

/// "IAM JSON policy elements: Resource": wildcards within ARN segments; `"*"` is every resource,
/// including the `"*"` of actions without one.
#[test]
fn resource_wildcards() {
    let policies = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "bedrock:*", "Resource": "arn:aws:bedrock:us-east-?:*:session/*"}
    }))];
    let none = Context::new();
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", SESSION, &none),
        Allow
    );
    let west = "arn:aws:bedrock:us-west-2:111111111111:session/abc";
    assert_eq!(
        evaluate(&policies, "bedrock:GetSession", west, &none),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&policies, "bedrock:ListSessions", "*", &none),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&[allow_all()], "bedrock:ListSessions", "*", &none),
        Allow
    );
}

/// "IAM JSON policy elements: Condition operators", numeric operators: list at most 10 keys
/// (`NumericLessThanEquals` on `s3:max-keys`); `NumericNotEquals` NORs its values.
#[test]
fn numeric_operators() {
    let doc = |operator: &str, values: Value| {
        [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": "arn:aws:s3:::example_bucket",
                "Condition": {operator: {"s3:max-keys": values}}
            }
        }))]
    };
    let decide = |policies: &[Policy], max_keys: Option<&str>| {
        let ctx = max_keys.map_or_else(Context::new, |m| ctx(&[("s3:max-keys", m)]));
        evaluate(
            policies,
            "s3:ListBucket",
            "arn:aws:s3:::example_bucket",
            &ctx,
        )
    };
    let at_most_ten = doc("NumericLessThanEquals", json!("10"));
    assert_eq!(decide(&at_most_ten, Some("10")), Allow);
    assert_eq!(decide(&at_most_ten, Some("2.5")), Allow);
    assert_eq!(decide(&at_most_ten, Some("11")), ImplicitDeny);
    assert_eq!(decide(&at_most_ten, Some("ten")), ImplicitDeny);
    assert_eq!(decide(&at_most_ten, None), ImplicitDeny);
    let not_five_or_seven = doc("NumericNotEquals", json!([5, 7]));
    assert_eq!(decide(&not_five_or_seven, Some("6")), Allow);
    assert_eq!(decide(&not_five_or_seven, Some("7")), ImplicitDeny);
    assert_eq!(decide(&not_five_or_seven, None), Allow);
    assert_eq!(
        decide(&doc("NumericGreaterThan", json!(100)), Some("100")),
        ImplicitDeny
    );
    assert_eq!(
        decide(&doc("NumericGreaterThanEquals", json!(100)), Some("100")),
        Allow
    );
}

/// "IAM JSON policy elements: Condition operators", date operators: credentials issued after
/// 2020-01-01T00:00:01Z (`DateGreaterThan` on `aws:TokenIssueTime`); ISO 8601 or epoch seconds.
#[test]
fn date_operators() {
    let doc = |operator: &str, value: Value| {
        [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "bedrock:*",
                "Resource": "*",
                "Condition": {operator: {"aws:TokenIssueTime": value}}
            }
        }))]
    };
    let decide = |policies: &[Policy], issued: Option<&str>| {
        let ctx = issued.map_or_else(Context::new, |t| ctx(&[("aws:TokenIssueTime", t)]));
        evaluate(policies, "bedrock:GetSession", SESSION, &ctx)
    };
    for after in [
        doc("DateGreaterThan", json!("2020-01-01T00:00:01Z")),
        doc("DateGreaterThan", json!(1577836801)),
    ] {
        assert_eq!(decide(&after, Some("2020-06-01T00:00:00Z")), Allow);
        assert_eq!(decide(&after, Some("2020-01-01T00:00:01Z")), ImplicitDeny);
        assert_eq!(decide(&after, Some("2019-12-31T23:59:59Z")), ImplicitDeny);
        assert_eq!(
            decide(&after, Some("1600000000")),
            Allow,
            "epoch seconds in the request"
        );
        assert_eq!(decide(&after, Some("2020-01-02")), Allow, "a date alone");
        assert_eq!(decide(&after, Some("2020-06-01T02:00:00+02:00")), Allow);
        assert_eq!(decide(&after, Some("yesterday")), ImplicitDeny);
        assert_eq!(decide(&after, None), ImplicitDeny);
    }
    let not_on = doc("DateNotEquals", json!("2024-05-01"));
    assert_eq!(decide(&not_on, Some("2024-05-01T00:00:00Z")), ImplicitDeny);
    assert_eq!(decide(&not_on, Some("2024-05-02T00:00:00Z")), Allow);
    assert_eq!(
        decide(
            &doc("DateLessThanEquals", json!("2024-05-01")),
            Some("2024-05-01T00:00:00Z")
        ),
        Allow
    );
}

/// "IAM JSON policy elements: Condition operators", IP address operators: `203.0.113.0/24`, IPv4 and
/// IPv6 ranges mixed.
#[test]
fn ip_address_operators() {
    let doc = |operator: &str| {
        [policy(json!({
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Action": "bedrock:*",
                "Resource": "*",
                "Condition": {operator: {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64", "198.51.100.7"]}}
            }
        }))]
    };
    let decide = |policies: &[Policy], ip: Option<&str>| {
        let ctx = ip.map_or_else(Context::new, |ip| ctx(&[("aws:SourceIp", ip)]));
        evaluate(policies, "bedrock:GetSession", SESSION, &ctx)
    };
    let inside = doc("IpAddress");
    assert_eq!(decide(&inside, Some("203.0.113.200")), Allow);
    assert_eq!(decide(&inside, Some("2001:db8:1234:5678::1")), Allow);
    assert_eq!(decide(&inside, Some("198.51.100.7")), Allow);
    assert_eq!(decide(&inside, Some("198.51.100.8")), ImplicitDeny);
    assert_eq!(decide(&inside, Some("203.0.114.1")), ImplicitDeny);
    assert_eq!(decide(&inside, Some("2001:db8:1234:5679::1")), ImplicitDeny);
    assert_eq!(decide(&inside, None), ImplicitDeny);
    let outside = doc("NotIpAddress");
    assert_eq!(decide(&outside, Some("203.0.113.200")), ImplicitDeny);
    assert_eq!(decide(&outside, Some("192.0.2.1")), Allow);
    assert_eq!(decide(&outside, None), Allow);
}

/// "Single-valued vs. multivalued context keys": a multivalued key needs a set operator (a plain operator
/// has no single value to compare), and can't be a policy variable.
#[test]
fn multivalued_keys_need_set_operators() {
    let plain = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "bedrock:TagResource", "Resource": "*", "Condition": {"StringEquals": {"aws:TagKeys": "a"}}}
    }))];
    assert_eq!(
        evaluate(
            &plain,
            "bedrock:TagResource",
            SESSION,
            &tag_keys(&["a", "b"])
        ),
        ImplicitDeny
    );
    assert_eq!(
        evaluate(&plain, "bedrock:TagResource", SESSION, &tag_keys(&["a"])),
        Allow
    );

    let as_variable = [policy(json!({
        "Version": "2012-10-17",
        "Statement": {"Effect": "Allow", "Action": "bedrock:TagResource", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/k": "${aws:TagKeys}"}}}
    }))];
    let mut request = tag_keys(&["k"]);
    request.set("aws:RequestTag/k", "k");
    assert_eq!(
        evaluate(&as_variable, "bedrock:TagResource", SESSION, &request),
        ImplicitDeny
    );
    request.set("aws:TagKeys", "k");
    assert_eq!(
        evaluate(&as_variable, "bedrock:TagResource", SESSION, &request),
        Allow
    );
}

/// "IAM JSON policy elements reference": `Statement` is one object or an array, the elements strings or
/// arrays of strings, condition values strings, numbers or booleans.
#[test]
fn element_shapes() {
    let one = [policy(
        json!({"Statement": {"Effect": "Allow", "Action": "bedrock:GetSession", "Resource": SESSION}}),
    )];
    let many = [policy(json!({
        "Version": "2012-10-17",
        "Id": "shapes",
        "Statement": [
            {"Sid": "a", "Effect": "Allow", "Action": ["bedrock:GetSession"], "Resource": [SESSION], "Condition": {}},
            {"Effect": "Allow", "Action": "bedrock:ListSessions", "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestedRegion": ["us-east-1"]}, "NumericLessThan": {"bedrock:MaxResults": 100}}}
        ]
    }))];
    let none = Context::new();
    assert_eq!(evaluate(&one, "bedrock:GetSession", SESSION, &none), Allow);
    assert_eq!(evaluate(&many, "bedrock:GetSession", SESSION, &none), Allow);
    let listing = |max: &str| {
        ctx(&[
            ("aws:RequestedRegion", "us-east-1"),
            ("bedrock:MaxResults", max),
        ])
    };
    assert_eq!(
        evaluate(&many, "bedrock:ListSessions", "*", &listing("50")),
        Allow
    );
    assert_eq!(
        evaluate(&many, "bedrock:ListSessions", "*", &listing("500")),
        ImplicitDeny
    );
}

/// Documents IAM refuses (IAM's own messages: "Policy document should not specify a principal",
/// "Actions/Conditions must be prefaced by a vendor", "Resource ... must be in ARN format or \"*\""), and
/// a message that names the fault.
#[test]
fn bad_documents_are_refused_with_a_reason() {
    let statement = |extra: Value| {
        let mut s = json!({"Effect": "Allow", "Action": "bedrock:GetSession", "Resource": "*"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                s.as_object_mut().unwrap().remove(k);
            } else {
                s[k] = v.clone();
            }
        }
        json!({"Version": "2012-10-17", "Statement": [s]})
    };
    let cases = [
        (
            statement(json!({"Principal": {"AWS": "111111111111"}})),
            "Principal",
        ),
        (statement(json!({"NotPrincipal": "*"})), "NotPrincipal"),
        (statement(json!({"Effect": null})), "missing Effect"),
        (statement(json!({"Effect": "allow"})), "Effect must be"),
        (statement(json!({"Actions": "bedrock:*"})), "\"Actions\""),
        (
            statement(json!({"NotAction": "iam:*"})),
            "both Action and NotAction",
        ),
        (statement(json!({"Action": null})), "Action or NotAction"),
        (
            statement(json!({"Resource": null})),
            "Resource or NotResource",
        ),
        (statement(json!({"Action": []})), "non-empty array"),
        (
            statement(json!({"Action": "GetSession"})),
            "prefaced by a vendor",
        ),
        (
            statement(json!({"Resource": "arn:aws:bedrock:*"})),
            "must be in ARN format",
        ),
        (statement(json!({"Sid": 7})), "Sid"),
        (
            statement(json!({"Condition": {"StringEqualz": {"aws:username": "a"}}})),
            "StringEqualz",
        ),
        (
            statement(json!({"Condition": {"ForEachValue:StringEquals": {"k": "a"}}})),
            "ForEachValue:StringEquals",
        ),
        (
            statement(json!({"Condition": {"BinaryEquals": {"k": "QmluYXJ5"}}})),
            "not supported",
        ),
        (
            statement(json!({"Condition": {"NumericEquals": {"k": "ten"}}})),
            "\"ten\" is not a number",
        ),
        (
            statement(json!({"Condition": {"DateLessThan": {"k": "soon"}}})),
            "\"soon\" is not a date",
        ),
        (
            statement(json!({"Condition": {"Bool": {"k": "yes"}}})),
            "not true or false",
        ),
        (
            statement(json!({"Condition": {"IpAddress": {"k": "10.0.0.0/33"}}})),
            "not an IP address",
        ),
        (
            statement(json!({"Condition": {"NullIfExists": {"k": "true"}}})),
            "Null takes",
        ),
        (
            statement(json!({"Condition": {"StringEquals": {"k": []}}})),
            "non-empty array",
        ),
        (
            statement(json!({"Condition": {"StringEquals": {"k": {"nested": 1}}}})),
            "values must be",
        ),
        (
            statement(json!({"Condition": {"StringEquals": "k"}})),
            "must map condition keys",
        ),
        (
            statement(json!({"Condition": {"StringEquals": {"k": "${aws:username, default}"}}})),
            "bad policy variable",
        ),
        (
            json!({"Version": "2012-10-17", "Statement": []}),
            "non-empty array",
        ),
        (json!({"Version": "2012-10-17"}), "Statement"),
        (
            json!({"Version": "2010-01-01", "Statement": {}}),
            "Version \"2010-01-01\"",
        ),
        (
            json!({"Version": "2012-10-17", "Statements": []}),
            "\"Statements\"",
        ),
        (json!(["not", "an", "object"]), "JSON object"),
    ];
    for (doc, expected) in cases {
        let error = parse_error(doc.clone());
        assert!(
            error.contains(expected),
            "{doc}: {error:?} should mention {expected:?}"
        );
    }
    // The message says which statement.
    let error = parse_error(json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Sid": "Second", "Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEqualz": {"k": "v"}}}
        ]
    }));
    assert_eq!(
        error,
        "statement 2 (\"Second\"): condition StringEqualz on k: unknown condition operator \"StringEqualz\""
    );
}

/// "Troubleshoot access denied error messages": "User: user is not authorized to perform: action on
/// resource: resource because no identity-based policy allows the action action" / "with an explicit
/// deny in an identity-based policy"; the documentation's examples of actions without a resource
/// (codecommit:ListRepositories) have no "on resource:" part.
#[test]
fn denial_messages() {
    let alice = "arn:aws:iam::111111111111:user/alice";
    assert_eq!(
        denial_message(ImplicitDeny, alice, "bedrock:GetSession", SESSION),
        format!(
            "User: {alice} is not authorized to perform: bedrock:GetSession on resource: {SESSION} \
             because no identity-based policy allows the bedrock:GetSession action"
        )
    );
    assert_eq!(
        denial_message(ExplicitDeny, alice, "bedrock:DeleteSession", SESSION),
        format!(
            "User: {alice} is not authorized to perform: bedrock:DeleteSession on resource: {SESSION} \
             with an explicit deny in an identity-based policy"
        )
    );
    assert_eq!(
        denial_message(ImplicitDeny, alice, "bedrock:ListSessions", "*"),
        format!(
            "User: {alice} is not authorized to perform: bedrock:ListSessions because no \
             identity-based policy allows the bedrock:ListSessions action"
        )
    );
    assert_eq!(
        denial_message(Allow, alice, "bedrock:ListSessions", "*"),
        ""
    );
}
