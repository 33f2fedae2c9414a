//! The statements each backend's index tests EXPLAIN (`index_tests` in
//! `sqlite/` and `postgres/`): the lists, the claim and pruning, built by the
//! very functions the store runs them with.

use chrono::DateTime;

use crate::model::{ListFilter, Page};

use super::dialect::Dialect;
use super::lists::{list_attempts, list_messages, AttemptsOf};
use super::queue::{Claim, Claiming};
use super::run::Sql;
use super::upkeep::{prune_attempts_select, prune_payloads_select};

/// What the statements are built with: no filter, a first and a next page,
/// one busy endpoint.
pub struct Inputs {
    filter: ListFilter,
    pages: [Page; 2],
    skip: [String; 1],
}

impl Default for Inputs {
    fn default() -> Self {
        let first = Page {
            limit: 50,
            iterator: None,
            descending: true,
            backwards: false,
        };
        let next = Page {
            iterator: Some("x_2".into()),
            ..first.clone()
        };
        Inputs {
            filter: ListFilter::default(),
            pages: [first, next],
            skip: ["ep_1".into()],
        }
    }
}

/// A statement, what it is, and the index it must use if one is named.
pub struct Explained<'a> {
    pub what: &'static str,
    pub sql: Sql<'a>,
    pub index: Option<&'static str>,
}

/// The claim's statement among [`statements`].
pub const CLAIM: &str = "the due-delivery claim";

/// Every statement whose plan must walk an index; `claim_columns` are what
/// the backend's claim selects of the due deliveries.
pub fn statements<'a, DB: Dialect>(claim_columns: &str, inputs: &'a Inputs) -> Vec<Explained<'a>> {
    let mut all = Vec::new();
    let filter = &inputs.filter;
    for page in &inputs.pages {
        let lists = [
            (
                "messages by app",
                list_messages::<DB>("app_1", filter, page),
            ),
            (
                "attempts by endpoint",
                list_attempts::<DB>("app_1", AttemptsOf::Endpoint("ep_1"), filter, page),
            ),
            (
                "attempts by message",
                list_attempts::<DB>("app_1", AttemptsOf::Message("msg_1"), filter, page),
            ),
        ];
        all.extend(lists.into_iter().map(|(what, sql)| Explained {
            what,
            sql,
            index: None,
        }));
    }
    let claim = Claim {
        what: Claiming::Due {
            since: None,
            limit: 10,
            skip_endpoints: &inputs.skip,
        },
        now: DateTime::UNIX_EPOCH,
        lease_until: DateTime::UNIX_EPOCH,
    };
    all.push(Explained {
        what: CLAIM,
        sql: claim.bind(Sql::new(claim.rows::<DB>(claim_columns))),
        index: Some("delivery_due"),
    });
    for (what, select, index) in [
        (
            "expired payloads",
            prune_payloads_select::<DB>(),
            "message_expires_at",
        ),
        (
            "old attempts",
            prune_attempts_select::<DB>(),
            "attempt_created_at",
        ),
    ] {
        all.push(Explained {
            what,
            sql: Sql::new(select).bind(0_i64).bind(1000_i64),
            index: Some(index),
        });
    }
    all
}
