//! Placeholder: passes the impl through (the real export glue comes next).
use proc_macro::TokenStream;
/// Export the hooks of a `Rules` impl.
#[proc_macro_attribute]
pub fn rules(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
