//! Decode Kubernetes protobuf bodies given as file paths and print their JSON (a debugging aid).

fn main() {
    for path in std::env::args().skip(1) {
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        match capstan_wire::decode(&body) {
            Ok(v) => println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default()),
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
