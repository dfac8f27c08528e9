//! `agentd lsp` — the language server on stdin/stdout (logic in `agentd_compiler::frontend::lsp`).

use agentd_compiler::frontend::lsp;

use crate::{EXIT_OK, EXIT_USAGE};

pub fn run(opts: &lsp::Options) -> u8 {
    let (connection, io_threads) = lsp_server::Connection::stdio();
    let served = lsp::serve(&connection, opts);
    // Dropping the connection closes the writer, so the I/O threads can finish.
    drop(connection);
    let joined = io_threads.join();
    match (served, joined) {
        (Ok(()), Ok(())) => EXIT_OK,
        (Err(e), _) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
        (Ok(()), Err(e)) => {
            eprintln!("error: language server I/O: {e}");
            EXIT_USAGE
        }
    }
}
