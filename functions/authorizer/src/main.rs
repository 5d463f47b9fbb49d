#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_auth::authorizer::run().await
}
