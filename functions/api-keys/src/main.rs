#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_auth::lambda::run_routes(&[lambda_auth::Route::ApiKeys, lambda_auth::Route::ApiKey])
        .await
}
