//! Compresses an image as `baseimg build` does, with a chosen number of threads, and prints
//! the size and time; `ci/bench-flash.sh` uses it to show the output does not depend on the
//! thread count. Usage: compress_image IMAGE OUT THREADS

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, out, threads] = args.as_slice() else {
        eprintln!("usage: compress_image IMAGE OUT THREADS");
        return ExitCode::from(2);
    };
    let Ok(threads) = threads.parse::<u32>() else {
        eprintln!("compress_image: THREADS must be a number, not `{threads}`");
        return ExitCode::from(2);
    };
    let start = std::time::Instant::now();
    match baseimg::release::compress::compress_with(image.as_ref(), out.as_ref(), threads) {
        Ok(size) => {
            let secs = start.elapsed().as_secs_f64();
            println!("{threads} thread(s): {size} bytes in {secs:.1}s");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compress_image: {e:#}");
            ExitCode::from(2)
        }
    }
}
