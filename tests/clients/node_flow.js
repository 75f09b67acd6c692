// A user's Node.js program, unchanged but for the endpoint: Tencent's SDK against facecloud.
// Usage: node node_flow.js ENDPOINT SECRET_ID SECRET_KEY IMAGE_A IMAGE_B  (images: files, sent as base64)
// Prints one JSON object: each step's response, or {Error: code} when the SDK threw.
const fs = require("fs");
const tencentcloud = require("tencentcloud-sdk-nodejs");

const [endpoint, secretId, secretKey, imageA, imageB] = process.argv.slice(2);
const client = new tencentcloud.iai.v20200303.Client({
  credential: { secretId, secretKey },
  region: "ap-guangzhou",
  profile: { httpProfile: { endpoint, protocol: "http://" } },
});
const a = fs.readFileSync(imageA).toString("base64");
const b = fs.readFileSync(imageB).toString("base64");

async function step(name, params) {
  try {
    return await client[name](params);
  } catch (error) {
    return { Error: error.code || String(error), Message: error.message };
  }
}

(async () => {
  const out = {};
  out.DetectFace = await step("DetectFace", { Image: a });
  out.CompareFace = await step("CompareFace", { ImageA: a, ImageB: b });
  out.CreateGroup = await step("CreateGroup", { GroupId: "node", GroupName: "node" });
  out.CreatePerson = await step("CreatePerson", { GroupId: "node", PersonId: "p1", PersonName: "p1", Image: a });
  out.SearchPersons = await step("SearchPersons", { GroupIds: ["node"], Image: b });
  out.GetPersonListNum = await step("GetPersonListNum", { GroupId: "node" });
  out.DeleteGroup = await step("DeleteGroup", { GroupId: "node" });
  out.GetGroupList = await step("GetGroupList", {});
  const forged = new tencentcloud.iai.v20200303.Client({
    credential: { secretId, secretKey: "x".repeat(32) },
    region: "ap-guangzhou",
    profile: { httpProfile: { endpoint, protocol: "http://" } },
  });
  try {
    await forged.GetGroupList({});
    out.Forged = {};
  } catch (error) {
    out.Forged = { Error: error.code };
  }
  process.stdout.write(JSON.stringify(out));
})();
