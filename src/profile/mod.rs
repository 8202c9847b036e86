//! Profile files to resolved profiles: `yaml` (text
//! to a spanned tree), `raw` (types as written), `schema` (the JSON schema and its run-time
//! check), `load` (discovery, files, names, overrides), `resolve` (inheritance, references,
//! az's rules), `diag` (problems and how they print) and `likely` (the likely cause of a
//! misleading schema error: a field indented too little, a typo of a required key).
pub mod allow;
pub mod diag;
pub mod discover;
pub mod extends;
pub mod likely;
pub mod lint;
pub mod load;
pub mod names;
pub mod raw;
pub mod read;
pub mod resolve;
pub mod schema;
pub mod trust;
pub mod yaml;
