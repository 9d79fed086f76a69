//! The export macro of `switchyard-sdk`: `#[switchyard_sdk::rules]` on an
//! `impl Rules for T { .. }` block.
//!
//! The macro re-emits the impl unchanged (so native `cargo test` sees plain Rust)
//! and, only when compiling for `wasm32`, adds the component glue for exactly the
//! hooks written in the block: a hidden module that runs `wit_bindgen::generate!`
//! on a world exporting those hook interfaces (reusing the SDK's bindings for the
//! shared types and host imports) with the hook functions themselves skipped, and
//! hand-written canonical-ABI exports (`<interface>#<function>`, with no
//! post-return: the SDK frees an answer when the next call begins) that forward
//! to the SDK's `abi` module, which uses the host's lists in place instead of
//! wit-bindgen's element-by-element shims. Plugin
//! authors never see wit-bindgen; mistakes in the impl are compile errors
//! pointing at their code.
//!
//! Plugin authors use this through the re-export `switchyard_sdk::rules`; see the
//! SDK's documentation for examples.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::{format_ident, quote};
use switchyard_contract::{Hook, capability};
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl};

/// The contract's WIT directory, inside this package (`sdk/macros/wit` is a
/// symlink to the workspace's `wit/`, which `cargo package` follows), so a
/// published macro finds it wherever the registry unpacked it.
const WIT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wit");

/// The WIT package (name and version) the glue exports against.
const PACKAGE: &str = "switchyard:routing";
const VERSION: &str = switchyard_contract::CONTRACT_VERSION;

/// The rule hooks, named once in the contract crate.
const HOOKS: [Hook; 3] = Hook::ALL;

/// Export the hooks of a `Rules` impl from a WebAssembly component.
///
/// Put it on `impl Rules for YourType { .. }`, where `YourType: Default` (one
/// value is built per plugin instance). Only the hooks written in the block
/// (`prioritise`, `escalate`, `match_agents`) are exported; the host uses its
/// built-in rule for the others. On non-wasm targets the impl is left as is, so
/// the rules can be unit-tested natively.
///
/// Compile errors:
/// - the item is not an `impl Rules for T` block;
/// - the block contains an item that is not one of the three hooks;
/// - the block contains no hook at all.
#[proc_macro_attribute]
pub fn rules(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = TokenStream2::from(item);
    match expand(attr, item) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

fn expand(attr: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    if !attr.is_empty() {
        return Err(syn::Error::new_spanned(attr, "`#[switchyard_sdk::rules]` takes no arguments"));
    }
    let block: ItemImpl = syn::parse2(item.clone()).map_err(|e| {
        syn::Error::new(e.span(), "`#[switchyard_sdk::rules]` goes on an `impl Rules for YourType { .. }` block")
    })?;
    let hooks = hooks_of(&block)?;

    // `impl Rules for T` names `T` at the impl's scope; give it a fixed name there
    // so the hidden module can refer to it as `super::__SwitchyardRules` whatever
    // path the author wrote.
    let self_ty = &block.self_ty;
    let glue = glue(&hooks);
    Ok(quote! {
        #block

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __SwitchyardRules = #self_ty;

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(missing_docs, unsafe_code, clippy::all)]
        mod __switchyard_export {
            #glue
        }
    })
}

/// Check the impl and return the hooks it writes, in contract order.
fn hooks_of(block: &ItemImpl) -> syn::Result<Vec<&'static Hook>> {
    let Some((bang, trait_path, _)) = &block.trait_ else {
        return Err(syn::Error::new_spanned(
            &block.self_ty,
            "`#[switchyard_sdk::rules]` goes on `impl Rules for YourType`, not an inherent impl",
        ));
    };
    if let Some(bang) = bang {
        return Err(syn::Error::new_spanned(bang, "`#[switchyard_sdk::rules]` cannot export a negative impl"));
    }
    let is_rules = trait_path.segments.last().is_some_and(|s| s.ident == "Rules" && s.arguments.is_empty());
    if !is_rules {
        return Err(syn::Error::new_spanned(
            trait_path,
            "`#[switchyard_sdk::rules]` goes on `impl Rules for YourType` (the trait `switchyard_sdk::Rules`)",
        ));
    }
    if !block.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &block.generics,
            "an exported `Rules` impl cannot be generic: the component needs one concrete type",
        ));
    }

    let mut found = Vec::new();
    for item in &block.items {
        let ImplItem::Fn(method) = item else {
            return Err(syn::Error::new_spanned(
                item,
                "only the hooks `prioritise`, `escalate` and `match_agents` belong in a `Rules` impl",
            ));
        };
        let name = method.sig.ident.to_string();
        let Some(hook) = HOOKS.iter().find(|h| h.method() == name) else {
            return Err(syn::Error::new_spanned(
                &method.sig.ident,
                format!("`{name}` is not a rule hook; the hooks are `prioritise`, `escalate` and `match_agents`"),
            ));
        };
        found.push(hook);
    }
    if found.is_empty() {
        return Err(syn::Error::new(
            block.impl_token.span().join(block.self_ty.span()).unwrap_or_else(|| block.impl_token.span()),
            "this `Rules` impl writes no hook, so the plugin would export nothing; \
             write at least one of `prioritise`, `escalate`, `match_agents`",
        ));
    }
    found.sort_by_key(|h| HOOKS.iter().position(|x| x == *h));
    Ok(found)
}

/// The contents of the hidden export module for `hooks`.
fn glue(hooks: &[&'static Hook]) -> TokenStream2 {
    let wit_dir =
        std::fs::canonicalize(WIT_DIR).map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|_| WIT_DIR.to_owned());
    let mut world =
        format!("package switchyard:plugin;\nworld plugin {{\n    include {PACKAGE}/rules-base@{VERSION};\n");
    for hook in hooks {
        world.push_str(&format!("    export {PACKAGE}/{}@{VERSION};\n", hook.interface()));
    }
    world.push_str("}\n");
    let types_key = format!("{PACKAGE}/types@{VERSION}");
    let host_key = format!("{PACKAGE}/host@{VERSION}");

    // wit-bindgen generates the world (its component-type section declares the
    // exported interfaces, which is what the host checks) but, through `skip`, no
    // shim for the hook functions: those are written below against the canonical
    // ABI directly, lifting the host's lists in place (see the SDK's `abi` module).
    // With every function of an interface skipped wit-bindgen emits no `Guest`
    // trait and its `export!` would expand to nothing, so neither is used; each
    // interface module still references the component-type section, which keeps
    // it linked.
    let skip: Vec<&str> = HOOKS.iter().map(|h| h.name()).collect();
    // The custom section declaring the argument arena (see the SDK's `arena`
    // module), spelled as literals: a `link_section` and a static's
    // initializer must be.
    // One capability token per line (sections of the same name concatenate).
    let abi_section = capability::ABI_SECTION;
    let token = [capability::ARG_ARENA, b"\n", capability::ARENA_LEASE, b"\n"].concat();
    let arena_len = token.len();
    let arena_bytes = proc_macro2::Literal::byte_string(&token);
    let exports = hooks.iter().map(|hook| {
        let export_name = format!("{PACKAGE}/{}@{VERSION}#{}", hook.interface(), hook.name());
        let export_fn = format_ident!("__switchyard_export_{}", hook.method());
        // The SDK's body for the export (in `__private`). No post-return is
        // exported: the SDK frees the answer when the next call begins, which
        // saves the host one entry into the instance per call.
        let sdk_export = format_ident!("export_{}", hook.key());
        let (params, args) = if matches!(hook, Hook::Match) {
            // 23 flat parameters > MAX_FLAT_PARAMS: one pointer to them in memory.
            (quote! { params: *mut u8 }, quote! { params })
        } else {
            // now-ms, then (pointer, length) of rows, skills, attr-keys,
            // attr-value-ends, attr-values.
            let ptrs: Vec<_> = (0..5usize).map(|i| format_ident!("list{}", i)).collect();
            let lens: Vec<_> = (0..5usize).map(|i| format_ident!("len{}", i)).collect();
            (
                quote! { now_ms: i64, #(#ptrs: *mut u8, #lens: usize),* },
                quote! { ::switchyard_sdk::__private::FlatBatch { now_ms, lists: [#((#ptrs, #lens)),*] } },
            )
        };
        quote! {
            #[unsafe(export_name = #export_name)]
            unsafe extern "C" fn #export_fn(#params) -> *mut u8 {
                ::switchyard_sdk::__private::wit_bindgen::rt::run_ctors_once();
                // SAFETY: this is the export the host calls with the flattened
                // arguments of the hook, lowered into this instance's memory.
                RULES.with(|rules| unsafe { ::switchyard_sdk::__private::#sdk_export(rules, #args) })
            }
        }
    });
    quote! {
        ::switchyard_sdk::__private::wit_bindgen::generate!({
            inline: #world,
            path: #wit_dir,
            with: {
                #types_key: ::switchyard_sdk::__private::bindings::switchyard::routing::types,
                #host_key: ::switchyard_sdk::__private::bindings::switchyard::routing::host,
            },
            runtime_path: "::switchyard_sdk::__private::wit_bindgen::rt",
            skip: [#(#skip),*],
        });

        ::std::thread_local! {
            /// The author's rules, built once per instance.
            static RULES: super::__SwitchyardRules = <super::__SwitchyardRules as ::core::default::Default>::default();
        }

        /// The exports' `realloc` (wit-component uses `cabi_export_realloc` for
        /// export arguments only): the SDK's per-call argument arena.
        #[unsafe(export_name = "cabi_export_realloc")]
        unsafe extern "C" fn __switchyard_export_realloc(
            old_ptr: *mut u8,
            old_len: usize,
            align: usize,
            new_len: usize,
        ) -> *mut u8 {
            // SAFETY: called by the host as the canonical ABI's `realloc`.
            unsafe { ::switchyard_sdk::__private::export_realloc(old_ptr, old_len, align, new_len) }
        }

        /// Tells the host that the export `realloc` is the argument arena, so it
        /// may put all of a call's lists in one allocation (`ARG_ARENA`), and
        /// take that allocation from the arena itself (`ARENA_LEASE`).
        #[unsafe(link_section = #abi_section)]
        #[used]
        static __SWITCHYARD_ABI: [u8; #arena_len] = *#arena_bytes;

        #(#exports)*
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(item: TokenStream2) -> String {
        match expand(TokenStream2::new(), item) {
            Ok(_) => panic!("expected a compile error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn only_hook_methods_of_a_rules_impl_are_accepted() {
        assert_eq!(
            error_of(quote! { fn prioritise() {} }),
            "`#[switchyard_sdk::rules]` goes on an `impl Rules for YourType { .. }` block"
        );
        assert_eq!(
            error_of(quote! { impl Billing { fn prioritise(&self) {} } }),
            "`#[switchyard_sdk::rules]` goes on `impl Rules for YourType`, not an inherent impl"
        );
        assert_eq!(
            error_of(quote! { impl Default for Billing { fn default() -> Self { Billing } } }),
            "`#[switchyard_sdk::rules]` goes on `impl Rules for YourType` (the trait `switchyard_sdk::Rules`)"
        );
        assert_eq!(
            error_of(quote! { impl Rules for Billing { fn prioritize(&self) {} } }),
            "`prioritize` is not a rule hook; the hooks are `prioritise`, `escalate` and `match_agents`"
        );
        assert_eq!(
            error_of(quote! { impl Rules for Billing { const X: u8 = 1; } }),
            "only the hooks `prioritise`, `escalate` and `match_agents` belong in a `Rules` impl"
        );
        assert!(error_of(quote! { impl Rules for Billing {} }).starts_with("this `Rules` impl writes no hook"));
        assert_eq!(
            error_of(quote! { impl<T> Rules for Wrap<T> { fn escalate(&self) {} } }),
            "an exported `Rules` impl cannot be generic: the component needs one concrete type"
        );
        assert_eq!(
            expand(quote! { oops }, quote! { impl Rules for Billing { fn escalate(&self) {} } })
                .unwrap_err()
                .to_string(),
            "`#[switchyard_sdk::rules]` takes no arguments"
        );
    }

    #[test]
    fn the_glue_exports_exactly_the_hooks_written_in_contract_order() {
        let out = expand(
            TokenStream2::new(),
            quote! { impl switchyard_sdk::Rules for Claims { fn escalate(&self) {} fn prioritise(&self) {} } },
        )
        .unwrap()
        .to_string();
        let world = "include switchyard:routing/rules-base@0.1.0;\\n    \
                     export switchyard:routing/prioritiser@0.1.0;\\n    \
                     export switchyard:routing/escalator@0.1.0;\\n}";
        assert!(out.contains(world), "{out}");
        assert!(!out.contains("matcher"), "{out}");
        assert!(out.contains("export_prioritise") && out.contains("export_escalate") && !out.contains("export_match"));
        // The glue (alias + module) exists only on wasm32; native builds see the impl alone.
        assert_eq!(out.matches("# [cfg (target_arch = \"wasm32\")]").count(), 2, "{out}");
        assert!(out.contains("mod __switchyard_export"), "{out}");
        // Hand-written exports replace wit-bindgen's shims for the hooks written.
        assert!(out.contains("skip : [\"prioritise\" , \"escalate\" , \"match-agents\"]"), "{out}");
        assert!(out.contains("\"switchyard:routing/prioritiser@0.1.0#prioritise\""), "{out}");
        assert!(out.contains("\"switchyard:routing/escalator@0.1.0#escalate\""), "{out}");
        // No post-return: the SDK frees an answer when the next call begins.
        assert!(!out.contains("cabi_post"), "{out}");
        assert!(out.contains("type __SwitchyardRules = Claims"), "{out}");
    }
}
