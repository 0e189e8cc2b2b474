//! Column layout and Parquet writer settings of the block format (v3).

use arrow_schema::{DataType, Field, Fields, Schema};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::schema::types::ColumnPath;
use std::sync::Arc;

/// Series id column (both files).
pub(crate) const COL_SERIES_ID: &str = "series_id";
/// Metric name column of the series file.
pub(crate) const COL_NAME: &str = "__name__";
/// Prefix of promoted label columns of the series file.
pub(crate) const LABEL_PREFIX: &str = "l_";
/// Map column with the labels that have no column of their own.
pub(crate) const COL_LABELS: &str = "labels";
pub(crate) const COL_MIN_TIME: &str = "min_time";
pub(crate) const COL_MAX_TIME: &str = "max_time";
pub(crate) const COL_NUM_SAMPLES: &str = "num_samples";
pub(crate) const COL_FIRST_ROW: &str = "first_row";
/// Decimal scale of the series' `value_int` rows (format v2; absent in v1, meaning 0).
pub(crate) const COL_VALUE_SCALE: &str = "value_scale";
/// Rows of the series in each time bucket of the samples file (format v3).
pub(crate) const COL_BUCKET_SAMPLES: &str = "bucket_num_samples";
pub(crate) const COL_TIMESTAMP: &str = "timestamp";
pub(crate) const COL_VALUE: &str = "value";
/// Present only when integral values are split out (see [`WriterOptions::split_integers`]).
///
/// [`WriterOptions::split_integers`]: super::WriterOptions::split_integers
pub(crate) const COL_VALUE_INT: &str = "value_int";

/// How the float `value` column is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueEncoding {
    /// 8 bytes per value before zstd.
    Plain,
    /// Bytes of each value scattered into 8 streams (exponent bytes together), which zstd
    /// compresses much better for slowly changing floats.
    ByteStreamSplit,
}

fn dict_string() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The `labels` map type: `map<string, string>` with the field names Arrow's `MapBuilder` and
/// Parquet's MAP convention use (`key`, `value`).
pub(crate) fn labels_map_type() -> DataType {
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            // Never null in practice; nullable because that is MapBuilder's value field.
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

/// Arrow schema of `series.parquet` for the given promoted label names.
pub(crate) fn series_schema(label_columns: &[String]) -> Arc<Schema> {
    let mut fields = vec![
        Field::new(COL_SERIES_ID, DataType::UInt64, false),
        Field::new(COL_NAME, dict_string(), true),
    ];
    for n in label_columns {
        fields.push(Field::new(
            format!("{LABEL_PREFIX}{n}"),
            dict_string(),
            true,
        ));
    }
    fields.extend([
        Field::new(COL_LABELS, labels_map_type(), false),
        Field::new(COL_MIN_TIME, DataType::Int64, false),
        Field::new(COL_MAX_TIME, DataType::Int64, false),
        Field::new(COL_NUM_SAMPLES, DataType::UInt64, false),
        Field::new(COL_FIRST_ROW, DataType::UInt64, false),
        Field::new(COL_VALUE_SCALE, DataType::UInt8, false),
        Field::new(
            COL_BUCKET_SAMPLES,
            DataType::List(Arc::new(bucket_item_field())),
            false,
        ),
    ]);
    Arc::new(Schema::new(fields))
}

/// Item field of the `bucket_num_samples` list (Arrow's default name, non-null counts).
pub(crate) fn bucket_item_field() -> Field {
    Field::new("item", DataType::UInt32, false)
}

/// Arrow schema of `samples.parquet`.
pub(crate) fn samples_schema(split_integers: bool) -> Arc<Schema> {
    let mut fields = vec![
        Field::new(COL_SERIES_ID, DataType::UInt64, false),
        Field::new(COL_TIMESTAMP, DataType::Int64, false),
        Field::new(COL_VALUE, DataType::Float64, split_integers),
    ];
    if split_integers {
        fields.push(Field::new(COL_VALUE_INT, DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}

fn base_props(zstd_level: i32) -> parquet::file::properties::WriterPropertiesBuilder {
    WriterProperties::builder()
        // v2 data pages keep levels uncompressed and let readers skip pages more cheaply; every
        // current reader (pyarrow, DuckDB, DataFusion) reads them.
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(zstd_level).unwrap_or_default(),
        ))
        // Page-level min/max (the column index) plus the offset index: what lets a reader map
        // a series' row range to the few pages holding it.
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(format!("strata {}", env!("CARGO_PKG_VERSION")))
}

/// Writer settings of `series.parquet`.
pub(crate) fn series_props(zstd_level: i32, rows_per_page: usize) -> WriterProperties {
    base_props(zstd_level)
        .set_sorting_columns(Some(vec![SortingColumn {
            column_idx: 0,
            descending: false,
            nulls_first: false,
        }]))
        .set_data_page_row_count_limit(rows_per_page)
        .set_write_batch_size(rows_per_page.min(1024))
        // Label values are strings; page min/max over them are only useful to the metric-name
        // column (sorted). Truncating keeps the column index small for long values.
        .set_column_index_truncate_length(Some(64))
        .set_column_dictionary_enabled(ColumnPath::from(COL_SERIES_ID), false)
        .set_column_encoding(
            ColumnPath::from(COL_SERIES_ID),
            Encoding::DELTA_BINARY_PACKED,
        )
        .build()
}

/// Writer settings of `samples.parquet`.
pub(crate) fn samples_props(
    zstd_level: i32,
    rows_per_page: usize,
    rows_per_row_group: usize,
    value_encoding: ValueEncoding,
    split_integers: bool,
) -> WriterProperties {
    let mut b = base_props(zstd_level)
        .set_sorting_columns(Some(vec![
            SortingColumn {
                column_idx: 0,
                descending: false,
                nulls_first: false,
            },
            SortingColumn {
                column_idx: 1,
                descending: false,
                nulls_first: false,
            },
        ]))
        .set_max_row_group_row_count(Some(rows_per_row_group))
        .set_data_page_row_count_limit(rows_per_page)
        // The row-count limit is only checked between write batches.
        .set_write_batch_size(rows_per_page.min(1024))
        // Dictionaries never pay off here: ids and timestamps are delta-friendly, values rarely
        // repeat across a whole column chunk, and a dictionary fallback would mix encodings.
        .set_dictionary_enabled(false)
        .set_column_encoding(
            ColumnPath::from(COL_SERIES_ID),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_column_encoding(
            ColumnPath::from(COL_TIMESTAMP),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_column_encoding(
            ColumnPath::from(COL_VALUE),
            match value_encoding {
                ValueEncoding::Plain => Encoding::PLAIN,
                ValueEncoding::ByteStreamSplit => Encoding::BYTE_STREAM_SPLIT,
            },
        );
    if split_integers {
        b = b.set_column_encoding(
            ColumnPath::from(COL_VALUE_INT),
            Encoding::DELTA_BINARY_PACKED,
        );
    }
    b.build()
}
