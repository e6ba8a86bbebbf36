// Step 03's classic mistake: `?` on a parse error, in a function whose error type is io::Error.
pub fn amount(field: &str) -> std::io::Result<u64> {
    let amount: u64 = field.parse()?;
    Ok(amount)
}
