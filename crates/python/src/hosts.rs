//! The `hosts` argument: one spec string or a list of them, expanded as the command line's `-w`
//! expands them (`web[01-12].dc[1-2]`, `user@host:port`, `[::1]:2222`, commas).

use pyo3::prelude::*;

use fleetsh::{HostList, HostTarget};

use crate::{args, errors};

/// The hosts of `value`, in order, duplicates removed.
pub(crate) fn parse(value: &Bound<'_, PyAny>) -> PyResult<Vec<HostTarget>> {
    let py = value.py();
    let specs = args::texts("hosts", value)?;
    let mut list = HostList::new();
    for spec in &specs {
        list.include_spec(spec)
            .map_err(|e| errors::from_hosts(py, &e))?;
    }
    list.build().map_err(|e| errors::from_hosts(py, &e))
}
