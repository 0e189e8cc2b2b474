//! Errors of parsing and rendering templates.

use std::path::PathBuf;

/// A template that does not parse or load.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template {name}: line {line}: {message}")]
    Parse {
        name: String,
        line: usize,
        message: String,
    },
    #[error("invalid template glob {pattern:?}: {source}")]
    Glob {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error("cannot read template file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list template files of {pattern:?}: {source}")]
    List {
        pattern: String,
        #[source]
        source: glob::GlobError,
    },
}

/// A template that fails while rendering a notification.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template: no template {0:?} defined")]
    Undefined(String),
    #[error("template {template}: {message}")]
    Exec { template: String, message: String },
    #[error(transparent)]
    Parse(#[from] TemplateError),
    #[error("template {0}: nested too deeply (recursion?)")]
    TooDeep(String),
}
