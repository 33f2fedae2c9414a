//! The built-in catalog (`catalog/spot/`) and the page templates are embedded in
//! the binary; rebuild when they change.

fn main() {
    println!("cargo:rerun-if-changed=../../catalog");
    println!("cargo:rerun-if-changed=templates");
}
