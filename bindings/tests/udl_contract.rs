//! `udl/tessera.udl` is the contract of the bindings; the library declares
//! its interface with proc-macros. This test reads the metadata uniffi
//! embedded in the built cdylib (what `uniffi-bindgen --library` generates
//! Kotlin and Swift from) and the UDL listing, renders both as one line per
//! item (names, argument and return types, errors; not docs) and fails on
//! any difference, printing both sides.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use uniffi_meta::{FnParamMetadata, Metadata, Type};

const CRATE: &str = "tessera_ffi";

fn ty(t: &Type) -> String {
    match t {
        Type::Object { name, .. }
        | Type::Record { name, .. }
        | Type::Enum { name, .. }
        | Type::CallbackInterface { name, .. }
        | Type::Custom { name, .. } => name.clone(),
        Type::Box { inner_type } => ty(inner_type),
        Type::Optional { inner_type } => format!("{}?", ty(inner_type)),
        Type::Sequence { inner_type } => format!("[{}]", ty(inner_type)),
        Type::Set { inner_type } => format!("set<{}>", ty(inner_type)),
        Type::Map { key_type, value_type } => format!("map<{}, {}>", ty(key_type), ty(value_type)),
        other => format!("{other:?}"),
    }
}

fn params(inputs: &[FnParamMetadata]) -> String {
    inputs
        .iter()
        .map(|p| match &p.default {
            Some(d) => format!("{}: {} = {d:?}", p.name, ty(&p.ty)),
            None => format!("{}: {}", p.name, ty(&p.ty)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn signature(is_async: bool, inputs: &[FnParamMetadata], ret: Option<&Type>, throws: Option<&Type>) -> String {
    let mut s = format!("({})", params(inputs));
    if let Some(r) = ret {
        s += &format!(" -> {}", ty(r));
    }
    if let Some(e) = throws {
        s += &format!(" throws {}", ty(e));
    }
    if is_async {
        s = format!("async {s}");
    }
    s
}

fn fields(f: &[uniffi_meta::FieldMetadata]) -> String {
    f.iter().map(|f| format!("{}: {}", f.name, ty(&f.ty))).collect::<Vec<_>>().join(", ")
}

/// One line per exported item, or `None` for bookkeeping items.
fn render(item: &Metadata) -> Option<String> {
    Some(match item {
        Metadata::Namespace(_) | Metadata::UdlFile(_) => return None,
        Metadata::Func(f) => {
            format!("fn {}{}", f.name, signature(f.is_async, &f.inputs, f.return_type.as_ref(), f.throws.as_ref()))
        }
        Metadata::Object(o) => format!("object {} ({:?})", o.name, o.imp),
        Metadata::CallbackInterface(c) => format!("callback interface {}", c.name),
        Metadata::Record(r) => format!("record {} {{ {} }}", r.name, fields(&r.fields)),
        Metadata::Enum(e) => {
            let variants = e
                .variants
                .iter()
                .map(
                    |v| if v.fields.is_empty() { v.name.clone() } else { format!("{}({})", v.name, fields(&v.fields)) },
                )
                .collect::<Vec<_>>()
                .join(", ");
            format!("enum {} {:?} {{ {variants} }}", e.name, e.shape)
        }
        Metadata::Constructor(c) => {
            format!(
                "constructor {}.{}{}",
                c.self_name,
                c.name,
                signature(c.is_async, &c.inputs, None, c.throws.as_ref())
            )
        }
        Metadata::Method(m) => format!(
            "method {}.{}{}",
            m.self_name,
            m.name,
            signature(m.is_async, &m.inputs, m.return_type.as_ref(), m.throws.as_ref())
        ),
        Metadata::TraitMethod(m) => format!(
            "method {}.{}{}",
            m.trait_name,
            m.name,
            signature(m.is_async, &m.inputs, m.return_type.as_ref(), m.throws.as_ref())
        ),
        Metadata::CustomType(c) => format!("custom {} = {}", c.name, ty(&c.builtin)),
        Metadata::UniffiTrait(t) => format!("trait {} for {}", t.name(), t.self_name()),
        Metadata::ObjectTraitImpl(i) => format!("impl {} for {}", ty(&i.trait_ty), ty(&i.ty)),
    })
}

fn listing(items: impl IntoIterator<Item = Metadata>) -> BTreeSet<String> {
    items.into_iter().filter_map(|i| render(&i)).collect()
}

/// The cdylib cargo built with this test: `cargo test` leaves it in
/// `target/<profile>/deps/` next to the test binary, `cargo build` copies it
/// up to `target/<profile>/`.
fn library_path() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("target/<profile>/deps");
    let name = format!("{}{CRATE}{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let candidates = [deps.join(&name), deps.parent().map(|p| p.join(&name)).unwrap_or_default()];
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| panic!("no {name} next to {}", exe.display()))
}

#[test]
fn library_exports_exactly_the_udl_listing() {
    let udl_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../udl/tessera.udl");
    let udl = std::fs::read_to_string(&udl_path).expect("udl/tessera.udl");
    let from_udl = uniffi_udl::parse_udl(&udl, CRATE).expect("the UDL parses");
    assert_eq!(from_udl.namespace.name, "tessera");

    let lib = library_path();
    let bytes = std::fs::read(&lib).unwrap_or_else(|e| panic!("reading {}: {e}", lib.display()));
    let items = uniffi_bindgen::macro_metadata::extract_from_bytes(&bytes)
        .unwrap_or_else(|e| panic!("reading uniffi metadata from {}: {e:#}", lib.display()));
    let namespace = items.iter().find_map(|i| match i {
        Metadata::Namespace(n) if n.crate_name == CRATE => Some(n.name.clone()),
        _ => None,
    });
    assert_eq!(namespace.as_deref(), Some("tessera"), "the library's uniffi namespace");

    let library = listing(items.into_iter().filter(|i| i.module_path().split("::").next() == Some(CRATE)));
    let contract = listing(from_udl.items);
    let missing: Vec<_> = contract.difference(&library).collect();
    let unlisted: Vec<_> = library.difference(&contract).collect();
    assert!(
        missing.is_empty() && unlisted.is_empty(),
        "udl/tessera.udl and the library disagree.\n  in the UDL, not exported:\n    {}\n  exported, not in the UDL:\n    {}",
        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    "),
        unlisted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n    "),
    );
    // A listing that lost most of its items would agree with a library that
    // lost the same ones; the wallet's core calls must be there.
    for expected in ["constructor Wallet.create", "method Wallet.import", "method Keystore.storage_key"] {
        assert!(contract.iter().any(|l| l.starts_with(expected)), "{expected} is in the contract");
    }
}

/// The bindings wrap the core; the core must stay usable without uniffi (the
/// CLI, the gate and the registry link it too).
#[test]
fn the_core_does_not_depend_on_uniffi() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("core/Cargo.toml");
    assert!(!text.contains("uniffi"), "core/Cargo.toml mentions uniffi");
}
