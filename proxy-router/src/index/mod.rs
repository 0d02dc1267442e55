//! The chain indexer: backfills the marketplace's events from a start block in bounded ranges, then
//! follows the head at a confirmation depth, detects reorgs and keeps the `store` tables equal to the
//! chain. It sits above `chain` (reads) and `store` (writes), which never import each other.

pub mod decode;
pub mod reader;
