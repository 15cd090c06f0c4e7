// `sqlx::migrate!` embeds the migrations: a migration added or changed must rebuild the crate,
// which cargo does not know of itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
