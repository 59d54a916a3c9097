//! `#[derive(TaskType)]`: a Rust task type's registered name and version,
//! fixed in the source and checked when the crate compiles.
//!
//! ```text
//! #[derive(Serialize, Deserialize, TaskType)]
//! #[task(name = "PrintMovieStats", version = "v1.1")]
//! struct PrintMovieStats { title: String }
//! ```
//!
//! The name is the struct's identifier unless `name = "..."` is given (so
//! moving the struct to another module never changes it; renaming it does
//! unless the name is written out), the version `v0.0` unless `version =
//! "vMAJOR.MINOR"` is. A name outside 1 to 256 bytes, a malformed version,
//! or an unknown key is a compile error pointing at the attribute.

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, LitStr, parse_macro_input};

/// The most bytes a task type's name has (the host's bound).
const MAX_NAME_BYTES: usize = 256;

/// Implements `sandflow_sdk::TaskType` with the `#[task(...)]` name and version.
#[proc_macro_derive(TaskType, attributes(task))]
pub fn derive_task_type(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut name = input.ident.to_string();
    let mut version = "v0.0".to_owned();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("task")) {
        attr.parse_nested_meta(|meta| {
            let value: LitStr = meta.value()?.parse()?;
            if meta.path.is_ident("name") {
                name = checked_name(&value.value()).map_err(|why| syn::Error::new(value.span(), why))?;
            } else if meta.path.is_ident("version") {
                version =
                    checked_version(&value.value()).map_err(|why| syn::Error::new(value.span(), why))?;
            } else {
                return Err(meta.error("unknown key: `#[task(...)]` takes `name` and `version`"));
            }
            Ok(())
        })?;
    }
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::sandflow_sdk::TaskType for #ident #type_generics #where_clause {
            const NAME: &'static str = #name;
            const VERSION: &'static str = #version;
        }
    })
}

/// `name` if it is 1 to 256 bytes, else why not.
fn checked_name(name: &str) -> Result<String, String> {
    if (1..=MAX_NAME_BYTES).contains(&name.len()) {
        Ok(name.to_owned())
    } else {
        Err(format!("a task type's name has 1 to {MAX_NAME_BYTES} bytes, not {}", name.len()))
    }
}

/// `version` if it is `vMAJOR.MINOR` (numbers without leading zeros, at
/// most 9 digits each), else why not.
fn checked_version(version: &str) -> Result<String, String> {
    let number = |s: &str| {
        !s.is_empty()
            && s.len() <= 9
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'))
    };
    match version.strip_prefix('v').and_then(|rest| rest.split_once('.')) {
        Some((major, minor)) if number(major) && number(minor) => Ok(version.to_owned()),
        _ => Err(format!("version {version:?} is not vMAJOR.MINOR (for example v1.0)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_v_major_dot_minor() {
        for good in ["v0.0", "v1.0", "v12.345", "v999999999.0"] {
            assert_eq!(checked_version(good).as_deref(), Ok(good));
        }
        for bad in
            ["1.0", "v1", "v1.", "v.1", "v01.0", "v1.00", "v1.0.0", "v1.x", "V1.0", "v1234567890.0", ""]
        {
            assert!(checked_version(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn names_have_1_to_256_bytes() {
        assert!(checked_name("").is_err());
        assert!(checked_name(&"x".repeat(257)).is_err());
        assert_eq!(checked_name(&"é".repeat(128)).map(|n| n.len()), Ok(256));
    }

    #[test]
    fn the_attribute_sets_the_name_and_version() {
        let input: DeriveInput = syn::parse_quote! {
            #[task(name = "Stats", version = "v1.1")]
            struct MoviesStats { titles: Vec<String> }
        };
        let out = expand(&input).unwrap().to_string();
        assert!(out.contains("const NAME : & 'static str = \"Stats\""), "{out}");
        assert!(out.contains("const VERSION : & 'static str = \"v1.1\""), "{out}");
        let plain: DeriveInput = syn::parse_quote! { struct Leaf; };
        assert!(expand(&plain).unwrap().to_string().contains("\"Leaf\""));
        let unknown: DeriveInput = syn::parse_quote! { #[task(title = "x")] struct Leaf; };
        assert!(expand(&unknown).unwrap_err().to_string().contains("unknown key"));
        let bad: DeriveInput = syn::parse_quote! { #[task(version = "1.0")] struct Leaf; };
        assert!(expand(&bad).unwrap_err().to_string().contains("is not vMAJOR.MINOR"));
    }
}
