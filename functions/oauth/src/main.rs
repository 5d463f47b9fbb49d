#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    use lambda_auth::Route;
    lambda_auth::lambda::run_routes(&[
        Route::OAuthAuthorize,
        Route::OAuthCallback,
        Route::OAuthExchange,
    ])
    .await
}
