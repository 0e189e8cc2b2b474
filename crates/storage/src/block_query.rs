//! Reading named blocks: how a querier reads from store-gateways that each hold a share of the
//! bucket's blocks. The querier plans the blocks a query needs from the bucket index, asks each
//! block's owners by name, and checks that every block was read by someone (Mimir's
//! consistency check): an answer names the blocks it read.

use crate::query::{ChunkedSeries, SelectHints};
use crate::QueryError;
use async_trait::async_trait;
use strata_model::{Labels, Matcher, TenantId};
use ulid::Ulid;

/// A read of named blocks: series matching `matchers` with samples in `[start, end]`.
#[derive(Debug, Clone, Copy)]
pub struct BlockSelection<'a> {
    pub tenant: &'a TenantId,
    pub blocks: &'a [Ulid],
    pub matchers: &'a [Matcher],
    pub start: i64,
    pub end: i64,
}

impl<'a> BlockSelection<'a> {
    pub fn new(
        tenant: &'a TenantId,
        blocks: &'a [Ulid],
        matchers: &'a [Matcher],
        start: i64,
        end: i64,
    ) -> Self {
        Self {
            tenant,
            blocks,
            matchers,
            start,
            end,
        }
    }
}

/// An answer and the blocks it was read from. A store that does not hold some of the blocks
/// asked for (not their owner) leaves them out of `queried`, and the caller asks another.
#[derive(Debug, Clone, PartialEq)]
pub struct BlocksAnswer<T> {
    pub value: T,
    pub queried: Vec<Ulid>,
}

/// A store that reads blocks by name (a store-gateway, local or remote).
#[async_trait]
pub trait BlockQueryable: Send + Sync {
    /// Series with their samples, sorted by labels (samples merged across the blocks).
    async fn select_blocks(
        &self,
        sel: BlockSelection<'_>,
        hints: &SelectHints,
    ) -> Result<BlocksAnswer<Vec<ChunkedSeries>>, QueryError>;

    /// Label sets, sorted; more than `limit` is the series limit exceeded.
    async fn series_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<Labels>>, QueryError>;

    /// Label names, sorted.
    async fn label_names_blocks(
        &self,
        sel: BlockSelection<'_>,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError>;

    /// Values of label `name`, sorted.
    async fn label_values_blocks(
        &self,
        sel: BlockSelection<'_>,
        name: &str,
        limit: usize,
    ) -> Result<BlocksAnswer<Vec<String>>, QueryError>;
}
