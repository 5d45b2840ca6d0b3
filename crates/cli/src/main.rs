//! The `ocituf` command line.
fn main() {
    println!("ocituf {}", env!("CARGO_PKG_VERSION"));
}
