#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_auth::lambda::run(lambda_auth::Route::Login).await
}
