// Step 01's classic mistake: the reader takes the stream, and the echo still wants it.
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

pub fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 {
        stream.write_all(line.as_bytes())?;
        line.clear();
    }
    Ok(())
}
