//! One of the recorder's connections, which plans its recording statement again now and then.
//!
//! The recorder's sessions keep one generic plan for `RECORD_EVENTS` (planning it on every
//! execution costs more than the write; see [`super::plans`]). A generic plan is made against the
//! tables as they are when it is made: planned on a table that was empty (a fresh deployment, a
//! truncate, statistics that say "empty"), it may read an index whole, or an index whose leading
//! column is not the id, and that stays cheap only while the table is small. So a session drops
//! its prepared statements every [`REPLAN_EVERY`] statements: the next execution plans again,
//! and the planner reads the tables' current size (their pages on disk, not only their
//! statistics). A plan made against a small table is used for at most that many statements.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::events::{self, EventToRecord, Recorded};

/// Statements a session runs on one plan. Planning costs about one statement's work, so this
/// costs about 1 %, and bounds how long a plan made against a small table can last.
pub const REPLAN_EVERY: u32 = 100;

pub struct RecordingSession {
    connection: PgConnection,
    since_planned: u32,
}

impl RecordingSession {
    pub fn new(connection: PgConnection) -> Self {
        RecordingSession {
            connection,
            since_planned: 0,
        }
    }

    /// Records a batch (see [`events::record_batch`]), planning the statement again first when
    /// its plan has served [`REPLAN_EVERY`] statements.
    pub async fn record_batch(&mut self, batch: &[EventToRecord]) -> sqlx::Result<Vec<Recorded>> {
        if self.since_planned >= REPLAN_EVERY {
            self.connection.clear_cached_statements().await?;
            self.since_planned = 0;
        }
        self.since_planned += 1;
        events::record_batch(&mut self.connection, batch).await
    }

    /// The connection itself, for readiness checks and for tests that inspect its plans.
    pub fn connection(&mut self) -> &mut PgConnection {
        &mut self.connection
    }

    pub async fn close(self) -> sqlx::Result<()> {
        self.connection.close().await
    }
}
