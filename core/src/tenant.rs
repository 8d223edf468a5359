//! Tenants: the company an event belongs to, in a helpdesk that serves several.
//!
//! This module only says what a valid tenant is. It does not route anything: the dispatcher
//! hands the tenant to the sinks in [`Emitted::tenant`](crate::Emitted::tenant), and the
//! transports decide which endpoints receive it.

use crate::error::{Error, shorten};

/// The longest tenant accepted, in bytes of UTF-8.
pub const MAX_TENANT_LEN: usize = 128;

/// Checks that `tenant` can name the tenant of an event: it is not empty, is at most
/// [`MAX_TENANT_LEN`] (128) bytes long and holds no control character (`\n`, `\t`, `\0`, …),
/// so that it is safe to write in logs, file names and headers.
///
/// It costs one pass over the string and allocates only for the error.
///
/// ```
/// assert!(deskhook::check_tenant("acme").is_ok());
/// assert_eq!(
///     deskhook::check_tenant("").unwrap_err().to_string(),
///     "invalid tenant '': it is empty (give a non-empty name of at most 128 bytes)",
/// );
/// ```
///
/// # Errors
///
/// [`Error::InvalidTenant`] saying which rule `tenant` breaks; it quotes at most 64
/// characters of it, with control characters escaped.
pub fn check_tenant(tenant: &str) -> Result<(), Error> {
    if tenant.is_empty() {
        return Err(Error::InvalidTenant(format!(
            "invalid tenant '': it is empty (give a non-empty name of at most {MAX_TENANT_LEN} \
             bytes)"
        )));
    }
    if tenant.len() > MAX_TENANT_LEN {
        return Err(Error::InvalidTenant(format!(
            "invalid tenant '{}' ({} bytes): longer than {MAX_TENANT_LEN} bytes",
            shorten(tenant).escape_debug(),
            tenant.len(),
        )));
    }
    if tenant.chars().any(char::is_control) {
        return Err(Error::InvalidTenant(format!(
            "invalid tenant '{}': it holds a control character",
            shorten(tenant).escape_debug(),
        )));
    }
    Ok(())
}
