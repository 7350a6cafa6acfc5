/** The part of co-wechat-api (CommonJS, untyped) the economy benchmark uses. */
declare module "co-wechat-api" {
  namespace API {
    interface StoredToken {
      accessToken: string;
      /** Epoch ms, from Date.now() at fetch + (expires_in - 10) s. */
      expireTime: number;
    }
  }
  class API {
    constructor(
      appid: string,
      appsecret: string,
      getToken?: () => Promise<API.StoredToken | null | undefined>,
      saveToken?: (token: API.StoredToken | null) => Promise<void>,
    );
    /** Base of every /cgi-bin/ URL, "https://api.weixin.qq.com/cgi-bin/" by default. */
    prefix: string;
    /** The shared token if Date.now() is before its expireTime, else a new fetch. */
    ensureAccessToken(): Promise<API.StoredToken>;
    /** Fetches a new token and saves it. */
    getAccessToken(): Promise<API.StoredToken>;
    saveToken(token: API.StoredToken | null): Promise<void>;
  }
  export default API;
}
